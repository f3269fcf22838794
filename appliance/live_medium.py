"""The live medium's layout: the contract between the image build and the installer.

The ISO's /live holds the kernel pair, the root filesystem image and, as live-build does, the
image's unpacked size in bytes (``filesystem.size``, next to the image) so the installer need not walk the image.
"""

from __future__ import annotations

import os
from pathlib import Path

SQUASHFS = "live/filesystem.squashfs"
NOT_COPIED = ("proc", "sys", "dev", "run", "tmp")  # top-level directories whose content is not installed


def tree_bytes(root: Path, skip_top: tuple[str, ...] = NOT_COPIED) -> int:
    """Sum of the sizes of the files under ``root`` (not following links), skipping the top-level
    directories in ``skip_top`` (by default those the installer leaves empty)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d not in skip_top]
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def size_file(image: Path) -> Path:
    return image.with_suffix(".size")


def recorded_size(image: Path) -> int | None:
    """The unpacked size the build wrote next to the image; None when absent or unreadable."""
    try:
        text = size_file(image).read_text(encoding="ascii").split()
        return int(text[0]) if text else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None
