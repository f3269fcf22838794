"""GPT of an isohybrid image (pure): make its GUIDs deterministic and its CRCs right.

pycdlib writes a GPT whose partition-array CRC is wrong and whose GUIDs are random. We rewrite the
primary and backup headers and arrays: GUIDs derived from a seed, both CRC32s recomputed.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import BinaryIO

SECTOR = 512
SIGNATURE = b"EFI PART"
_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")  # up to and including the partition-array CRC


@dataclass(frozen=True)
class GptHeader:
    revision: int
    header_size: int
    header_crc: int
    my_lba: int
    alternate_lba: int
    first_usable_lba: int
    last_usable_lba: int
    disk_guid: bytes
    entries_lba: int
    num_entries: int
    entry_size: int
    entries_crc: int

    @classmethod
    def parse(cls, sector: bytes) -> GptHeader:
        fields = _HEADER.unpack_from(sector)
        if fields[0] != SIGNATURE:
            raise ValueError("no GPT header signature")
        (_, revision, header_size, header_crc, _reserved, my_lba, alt_lba, first, last, guid, entries_lba,
         num, size, entries_crc) = fields  # fmt: skip
        return cls(revision, header_size, header_crc, my_lba, alt_lba, first, last, guid, entries_lba, num,
                   size, entries_crc)  # fmt: skip

    def pack(self, original: bytes) -> bytes:
        """The header sector with our fields (CRC computed), keeping any extra bytes of ``original``."""
        body = _HEADER.pack(
            SIGNATURE, self.revision, self.header_size, 0, 0, self.my_lba, self.alternate_lba,
            self.first_usable_lba, self.last_usable_lba, self.disk_guid, self.entries_lba,
            self.num_entries, self.entry_size, self.entries_crc,
        )  # fmt: skip
        sector = bytearray(original)
        sector[: len(body)] = body
        crc = zlib.crc32(bytes(sector[: self.header_size]))
        struct.pack_into("<I", sector, 16, crc)
        return bytes(sector)

    @property
    def entries_len(self) -> int:
        return self.num_entries * self.entry_size


def derived_guid(seed: str, name: str) -> bytes:
    """A version-4-shaped GUID from a seed, in GPT's on-disk (mixed-endian) byte order."""
    digest = hashlib.sha256(f"{seed}\0{name}".encode()).digest()[:16]
    return uuid.UUID(bytes=digest, version=4).bytes_le


def with_guids(entries: bytes, entry_size: int, seed: str) -> bytes:
    """Partition array with each used entry's unique GUID replaced by a derived one."""
    out = bytearray(entries)
    for i in range(len(entries) // entry_size):
        off = i * entry_size
        if any(out[off : off + 16]):  # non-zero type GUID: entry in use
            out[off + 16 : off + 32] = derived_guid(seed, f"partition-{i}")
    return bytes(out)


@dataclass(frozen=True)
class GptCheck:
    primary_ok: bool
    backup_ok: bool
    problems: tuple[str, ...]


def _read(fp: BinaryIO, offset: int, length: int) -> bytes:
    fp.seek(offset)
    data = fp.read(length)
    if len(data) != length:
        raise ValueError(f"image too short: wanted {length} bytes at {offset}")
    return data


def check(fp: BinaryIO) -> GptCheck:
    """Verify both headers' CRCs, both arrays' CRCs, and that the backup sits on the last sector."""
    problems: list[str] = []
    fp.seek(0, 2)
    last_lba = fp.tell() // SECTOR - 1
    primary_sector = _read(fp, SECTOR, SECTOR)
    primary = GptHeader.parse(primary_sector)
    results = []
    for label, hdr, raw in (("primary", primary, primary_sector), ("backup", None, None)):
        if hdr is None:
            raw = _read(fp, primary.alternate_lba * SECTOR, SECTOR)
            hdr = GptHeader.parse(raw)
        assert raw is not None
        ok = True
        if hdr.pack(raw)[16:20] != raw[16:20]:
            problems.append(f"{label} header CRC is wrong")
            ok = False
        entries = _read(fp, hdr.entries_lba * SECTOR, hdr.entries_len)
        if zlib.crc32(entries) != hdr.entries_crc:
            problems.append(f"{label} partition array CRC is wrong")
            ok = False
        results.append(ok)
    if primary.alternate_lba != last_lba:
        problems.append(f"backup header at LBA {primary.alternate_lba}, not on the last sector {last_lba}")
        results[1] = False
    return GptCheck(results[0], results[1], tuple(problems))


def normalise(fp: BinaryIO, seed: str) -> None:
    """Rewrite primary and backup GPT in place: derived GUIDs, correct CRCs."""
    primary_sector = _read(fp, SECTOR, SECTOR)
    primary = GptHeader.parse(primary_sector)
    backup_sector = _read(fp, primary.alternate_lba * SECTOR, SECTOR)
    backup = GptHeader.parse(backup_sector)
    raw_entries = _read(fp, primary.entries_lba * SECTOR, primary.entries_len)
    entries = with_guids(raw_entries, primary.entry_size, seed)
    crc = zlib.crc32(entries)
    disk_guid = derived_guid(seed, "disk")
    for hdr, raw in ((primary, primary_sector), (backup, backup_sector)):
        fixed = GptHeader(
            hdr.revision, hdr.header_size, 0, hdr.my_lba, hdr.alternate_lba, hdr.first_usable_lba,
            hdr.last_usable_lba, disk_guid, hdr.entries_lba, hdr.num_entries, hdr.entry_size, crc,
        )  # fmt: skip
        fp.seek(hdr.entries_lba * SECTOR)
        fp.write(entries)
        fp.seek(hdr.my_lba * SECTOR)
        fp.write(fixed.pack(raw))
