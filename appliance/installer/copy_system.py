"""How the live system is copied onto the target: the command lines and their progress output.

From the live ISO the installer unpacks the squashfs image itself with ``unsquashfs``: under QEMU
TCG that is 3-4x faster than reading every file through the kernel's squashfs (36 s against
117-184 s for the manager). Any other source (a directory, tests) is copied with rsync.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from appliance.live_medium import NOT_COPIED

RSYNC_EXCLUDES = (*[f"/{d}/*" for d in NOT_COPIED], "/mnt/*", "/media/*", "/lost+found")


def use_image(image: Path | None) -> Path | None:
    """The squashfs image to unpack, or None to rsync (no image, or no unsquashfs on this system)."""
    return image if image is not None and image.is_file() and shutil.which("unsquashfs") else None


def unsquashfs_command(image: Path, target: Path) -> list[str]:
    # -f: the target's directories exist (mount points); -excludes takes the patterns after the image
    return ["unsquashfs", "-f", "-d", str(target), "-excludes", str(image), *[f"{d}/*" for d in NOT_COPIED]]


def rsync_command(source_root: Path, target: Path) -> list[str]:
    cmd = ["rsync", "-aHAXx", "--numeric-ids", "--info=progress2", "--no-inc-recursive"]
    cmd += [f"--exclude={pattern}" for pattern in RSYNC_EXCLUDES]
    return [*cmd, str(source_root).rstrip("/") + "/", str(target) + "/"]


def percent_in(line: str) -> int | None:
    """The percentage in a progress line of rsync (``1.2G 45% 10MB/s ...``) or unsquashfs (``[==|] 9/20  45%``)."""
    for field in line.split():
        if field.endswith("%") and field[:-1].isdigit():
            return int(field[:-1])
    return None
