"""Which kernel the installed system gets: its own /boot, or the live medium's /live pair."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import ConfigError
from appliance.installer import live_kernel


def _root(tmp_path: Path, *releases: str) -> Path:
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    for release in releases:
        (root / "usr/lib/modules" / release).mkdir(parents=True)
    return root


def _medium(tmp_path: Path) -> Path:
    medium = tmp_path / "medium"
    (medium / "live").mkdir(parents=True)
    (medium / "live/vmlinuz").write_bytes(b"k" * 10)
    (medium / "live/initrd.img").write_bytes(b"i" * 20)
    return medium


def test_a_root_with_its_own_kernel_needs_nothing_from_the_medium(tmp_path: Path) -> None:
    root = _root(tmp_path, "6.1.0-13-amd64")
    (root / "boot/vmlinuz-6.1.0-13-amd64").write_bytes(b"k")
    assert live_kernel.from_medium(root, tmp_path / "absent") is None


def test_the_medium_pair_is_named_after_the_modules_release(tmp_path: Path) -> None:
    root = _root(tmp_path, "6.1.0-13-amd64")
    live = live_kernel.from_medium(root, _medium(tmp_path))
    assert live is not None and live.version == "6.1.0-13-amd64" and live.size == 30
    target = tmp_path / "target"
    copied = live_kernel.copy_to(live, target)
    assert [p.name for p in copied] == ["vmlinuz-6.1.0-13-amd64", "initrd.img-6.1.0-13-amd64"]
    assert (target / "boot/initrd.img-6.1.0-13-amd64").read_bytes() == b"i" * 20
    assert (target / "boot/vmlinuz-6.1.0-13-amd64").stat().st_mode & 0o777 == 0o644


def test_no_kernel_anywhere_is_an_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        live_kernel.from_medium(_root(tmp_path, "6.1.0-13-amd64"), tmp_path / "absent")
    assert "live/vmlinuz" in info.value.message and info.value.hint


def test_two_module_trees_are_ambiguous(tmp_path: Path) -> None:
    root = _root(tmp_path, "6.1.0-13-amd64", "6.1.0-14-amd64")
    with pytest.raises(ConfigError, match="exactly one kernel"):
        live_kernel.from_medium(root, _medium(tmp_path))
