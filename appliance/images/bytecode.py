"""Which .pyc files in an image go stale once mksquashfs gives every file the same time (pure).

Debian's py3compile writes timestamp-checked bytecode: each .pyc records its source's mtime. The
squashfs stamps every inode with SOURCE_DATE_EPOCH, so in the live system (and in an installed one,
unpacked from it) those no longer match and Python recompiles every module it imports, at every
boot, under emulation. Hash-checked bytecode (PEP 552) stays valid whatever the times are.
"""

from __future__ import annotations

from pathlib import Path

PYC_HEADER_BYTES = 16
_HASH_BASED = 0b01


def is_timestamp_pyc(header: bytes) -> bool:
    """True for bytecode validated by the source's mtime (PEP 552 flags word == 0)."""
    if len(header) < 8:
        return False
    return not int.from_bytes(header[4:8], "little") & _HASH_BASED


def source_of(pyc: Path) -> Path | None:
    """``pkg/__pycache__/mod.cpython-311.pyc`` -> ``pkg/mod.py`` (None for other layouts)."""
    if pyc.parent.name != "__pycache__" or pyc.suffix != ".pyc":
        return None
    module = pyc.name.split(".", 1)[0]
    return pyc.parent.parent / f"{module}.py"


SEARCHED = ("usr", "opt")  # not the merged-/usr symlinks (/lib, /bin): each file once


def timestamp_checked_sources(root: Path) -> list[Path]:
    """Sources (absolute in ``root``) whose .pyc is timestamp-checked, sorted."""
    found = []
    pycs = (pyc for top in SEARCHED if (root / top).is_dir() for pyc in (root / top).rglob("__pycache__/*.pyc"))
    for pyc in pycs:
        src = source_of(pyc)
        if src is None or not src.is_file():
            continue
        with open(pyc, "rb") as fp:
            if is_timestamp_pyc(fp.read(PYC_HEADER_BYTES)):
                found.append(src)
    return sorted(found)
