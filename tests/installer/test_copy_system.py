"""Copying the live system: progress parsing, command lines, and the size the plan reserves."""

from __future__ import annotations

from pathlib import Path

from appliance.installer import copy_system
from appliance.installer.install import source_size_mib
from appliance.live_medium import recorded_size, size_file, tree_bytes


def test_percent_from_rsync_and_unsquashfs_progress_lines() -> None:
    assert copy_system.percent_in("    412,123,456  45%   10.21MB/s    0:00:38 (xfr#9, to-chk=1/20)") == 45
    assert copy_system.percent_in("[=========/          ] 9512/20584  46%") == 46
    assert copy_system.percent_in("created 20584 files") is None
    assert copy_system.percent_in("100%") == 100


def test_unsquashfs_excludes_the_virtual_directories_after_the_image() -> None:
    cmd = copy_system.unsquashfs_command(Path("/m/live/filesystem.squashfs"), Path("/t"))
    assert cmd[:6] == ["unsquashfs", "-f", "-d", "/t", "-excludes", "/m/live/filesystem.squashfs"]
    assert {"proc/*", "sys/*", "dev/*", "run/*", "tmp/*"} == set(cmd[6:])


def test_an_image_is_used_only_when_it_exists(tmp_path: Path) -> None:
    image = tmp_path / "filesystem.squashfs"
    assert copy_system.use_image(None) is None
    assert copy_system.use_image(image) is None
    image.write_bytes(b"hsqs")
    assert copy_system.use_image(image) == image  # unsquashfs is a host tool of the test suite


def test_size_comes_from_the_size_file_next_to_the_image(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/big").write_bytes(b"x" * 3 * 1024 * 1024)
    (root / "proc").mkdir()
    (root / "proc/skipped").write_bytes(b"x" * 5 * 1024 * 1024)
    assert tree_bytes(root) == 3 * 1024 * 1024
    image = tmp_path / "filesystem.squashfs"
    assert recorded_size(image) is None
    assert source_size_mib(root, image=image) == int(3 * 1.15) + 64  # no size file: the tree is walked
    size_file(image).write_text("1073741824\n")
    assert source_size_mib(root, image=image) == int(1024 * 1.15) + 64
    size_file(image).write_text("garbage\n")
    assert recorded_size(image) is None
