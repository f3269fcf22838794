"""Work directory removal never goes through a leftover mount."""

from __future__ import annotations

from pathlib import Path

from appliance.images.workdir import mounts_under


def test_mounts_under_a_work_dir_are_found_deepest_first() -> None:
    text = (
        "proc /proc proc rw 0 0\n"
        "proc /w/build/rootfs/proc proc rw 0 0\n"
        "udev /w/build/rootfs/dev devtmpfs rw 0 0\n"
        "devpts /w/build/rootfs/dev/pts devpts rw 0 0\n"
        "tmpfs /w/build-other tmpfs rw 0 0\n"
    )
    found = mounts_under(Path("/w/build"), text)
    assert found[0] == Path("/w/build/rootfs/dev/pts")
    assert set(found) == {Path("/w/build/rootfs/proc"), Path("/w/build/rootfs/dev"), Path("/w/build/rootfs/dev/pts")}
