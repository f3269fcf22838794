"""Removing a build's work directory safely: never through a mount left behind by a killed tool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def mounts_under(root: Path, mounts_text: str) -> list[Path]:
    """Mount points at or below ``root`` in /proc/self/mounts text, deepest first (pure)."""
    root = root.resolve()
    found = []
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            point = Path(fields[1].replace("\\040", " "))
            if point == root or root in point.parents:
                found.append(point)
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_work_dir(path: Path) -> bool:
    """Unmount anything left below ``path`` (mmdebstrap killed mid-way), then delete it.

    Returns False (and leaves the directory) if a mount cannot be removed: deleting through a
    bind mount of /dev or /proc would damage the host.
    """
    if not path.exists():
        return True
    for point in mounts_under(path, Path("/proc/self/mounts").read_text()):
        subprocess.run(["umount", "--lazy", str(point)], check=False, capture_output=True)
    if mounts_under(path, Path("/proc/self/mounts").read_text()):
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True
