"""Write a directory tree as a hybrid ISO with pycdlib: El Torito BIOS (isolinux) + UEFI (FAT
image with GRUB), isohybrid MBR+GPT so the same file boots from a USB stick."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time as _time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import pycdlib
import pycdlib.dates
import pycdlib.headervd
import pycdlib.pycdlib

ISOLINUX_BIN = "/isolinux/isolinux.bin"
BOOT_CATALOG = "/isolinux/boot.cat"
EFI_IMAGE = "/boot/grub/efi.img"
_CLOCK_USERS: tuple[ModuleType, ...] = (pycdlib.pycdlib, pycdlib.headervd, pycdlib.dates)


class _PinnedClock:
    """Stands in for the ``time`` module inside pycdlib: time() is fixed, local time is UTC."""

    def __init__(self, epoch: int) -> None:
        self._epoch = epoch

    def time(self) -> float:
        return float(self._epoch)

    def localtime(self, secs: float | None = None) -> _time.struct_time:
        return _time.gmtime(self._epoch if secs is None else secs)

    def __getattr__(self, name: str) -> Any:
        return getattr(_time, name)


@contextlib.contextmanager
def pinned_clock(epoch: int) -> Iterator[None]:
    """pycdlib stamps every record with time.time() in local time; pin it for reproducible ISOs."""
    saved = [(m, m.time) for m in _CLOCK_USERS]
    try:
        for m in _CLOCK_USERS:
            m.time = _PinnedClock(epoch)  # type: ignore[attr-defined]
        yield
    finally:
        for m, original in saved:
            m.time = original  # type: ignore[attr-defined]


def iso9660_component(name: str, is_dir: bool) -> str:
    """ISO 9660 level-3 name for one path component (d-characters; files get ';1')."""
    keep = "".join(c if c.isalnum() or c in "._" else "_" for c in name.upper())
    if keep.startswith("."):
        keep = "_" + keep[1:]
    if is_dir:
        return keep.replace(".", "_")[:31]
    stem, dot, ext = keep.rpartition(".")
    if not dot:
        stem, ext = keep, ""
    stem = stem.replace(".", "_")
    return f"{stem[: 30 - len(ext)]}.{ext};1"


def iso9660_path(path: str, is_dir: bool) -> str:
    parts = PurePosixPath(path).parts[1:]
    names = [iso9660_component(p, True) for p in parts[:-1]]
    names.append(iso9660_component(parts[-1], is_dir))
    return "/" + "/".join(names)


def mbr_id(seed: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\0mbr".encode()).digest()[:4], "little")


@dataclass(frozen=True)
class IsoLayout:
    volume_id: str
    epoch: int
    seed: str  # for the MBR id and GPT GUIDs
    bios: bool = True
    efi: bool = True


def _walk(tree: Path) -> Iterator[tuple[str, Path]]:
    """(iso path, host path) for every directory and file under tree, sorted, parents first."""
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        rel = Path(dirpath).relative_to(tree).as_posix()
        base = "" if rel == "." else "/" + rel
        for name in [*dirnames, *sorted(filenames)]:
            yield f"{base}/{name}", Path(dirpath) / name


def add_tree(iso: pycdlib.PyCdlib, tree: Path, opened: list[Any]) -> None:
    for path, host in _walk(tree):
        rr_name = PurePosixPath(path).name
        if host.is_dir():
            iso.add_directory(iso9660_path(path, True), rr_name=rr_name, file_mode=0o40555)
        else:
            fp = open(host, "rb")  # noqa: SIM115 - pycdlib reads it while writing the ISO
            opened.append(fp)
            size = host.stat().st_size
            iso.add_fp(fp, size, iso9660_path(path, False), rr_name=rr_name, file_mode=0o100444)


def add_boot(iso: pycdlib.PyCdlib, layout: IsoLayout) -> None:
    if layout.bios:
        iso.add_eltorito(
            iso9660_path(ISOLINUX_BIN, False),
            bootcatfile=iso9660_path(BOOT_CATALOG, False),
            rr_bootcatname="boot.cat",
            boot_load_size=4,
            boot_info_table=True,
        )
    if layout.efi:
        iso.add_eltorito(iso9660_path(EFI_IMAGE, False), efi=True, bootable=True)
    if layout.bios:
        iso.add_isohybrid(efi=layout.efi, mbr_id=mbr_id(layout.seed))


def write_iso(tree: Path, out: Path, layout: IsoLayout) -> None:
    """Master ``tree`` into ``out`` (bootable if the tree holds isolinux and/or the EFI image)."""
    opened: list[Any] = []
    with pinned_clock(layout.epoch):
        iso = pycdlib.PyCdlib()
        iso.new(
            interchange_level=3,
            vol_ident=layout.volume_id,
            sys_ident="LINUX",
            app_ident_str="APPLIANCE",
            rock_ridge="1.09",
        )
        try:
            add_tree(iso, tree, opened)
            add_boot(iso, layout)
            iso.write(str(out))
        finally:
            iso.close()
            for fp in opened:
                fp.close()
