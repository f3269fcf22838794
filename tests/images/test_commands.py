"""Spec + config -> command lines and cache keys (pure)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from appliance.images import cache, commands
from appliance.images.config import DEV_COMPRESSION, RELEASE_COMPRESSION, BuildConfig, epoch_from_environment
from appliance.images.spec import load_role


def _config(**kw: object) -> BuildConfig:
    return replace(BuildConfig(role="test", output_dir=Path("/out"), cache_dir=Path("/cache")), **kw)  # type: ignore[arg-type]


def test_mmdebstrap_command_carries_the_spec() -> None:
    spec = load_role("manager")
    cmd = commands.mmdebstrap(spec, _config(), Path("/w/base.tar"), Path("/cache/debs"))
    assert cmd[0] == "mmdebstrap" and "--variant=minbase" in cmd and "--mode=root" in cmd
    include = next(a for a in cmd if a.startswith("--include="))
    assert "mariadb-server" in include and "live-boot" in include
    assert "--dpkgopt=path-exclude=/usr/share/man/*" in cmd
    assert "--dpkgopt=path-include=/usr/share/doc/*/copyright" in cmd
    assert "--setup-hook=sync-in /cache/debs /var/cache/apt/archives/" in cmd
    assert "--customize-hook=sync-out /var/cache/apt/archives /cache/debs" in cmd
    i = cmd.index("bookworm")
    assert cmd[i + 1] == "/w/base.tar"
    assert cmd[i + 2 :] == [
        "deb http://deb.debian.org/debian bookworm main",
        "deb http://deb.debian.org/debian bookworm-updates main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
    ]


def test_bootstrap_files_go_in_before_the_packages() -> None:
    spec = load_role("test")
    cmd = commands.mmdebstrap(spec, _config(), Path("/w/base.tar"), Path("/cache/debs"), Path("/w/boot-files"))
    assert "--essential-hook=sync-in /w/boot-files /" in cmd
    plain = commands.mmdebstrap(spec, _config(), Path("/w/base.tar"), Path("/cache/debs"))
    assert not any(a.startswith("--essential-hook") for a in plain)


def test_bootstrap_files_are_part_of_the_base_key(tmp_path: Path) -> None:
    spec = load_role("test")
    inputs = spec.bootstrap_inputs()["bootstrap_files"]
    assert list(inputs) == ["/etc/initramfs-tools/hooks/zz-appliance-module-trim",
                            "/etc/initramfs-tools/scripts/init-bottom/zz-appliance-keep-programs"]
    changed = replace(spec, bootstrap_files=())
    assert cache.base_key(spec, _config()) != cache.base_key(changed, _config())


def test_mksquashfs_pins_every_timestamp() -> None:
    cmd = commands.mksquashfs(Path("/r"), Path("/o.sq"), DEV_COMPRESSION, 1234)
    assert cmd[:3] == ["mksquashfs", "/r", "/o.sq"]
    assert cmd[cmd.index("-all-time") + 1] == "1234" and cmd[cmd.index("-mkfs-time") + 1] == "1234"
    assert cmd[cmd.index("-comp") + 1] == "zstd"
    release = commands.mksquashfs(Path("/r"), Path("/o"), RELEASE_COMPRESSION, 1)
    assert release[release.index("-comp") + 1] == "zstd" and release[release.index("-b") + 1] == "128K"


def test_fat_and_grub_commands() -> None:
    assert "--invariant" in commands.mkfs_fat(Path("/e.img"), "APPLIANCE")
    grub = commands.grub_mkimage_efi(Path("/B.EFI"), Path("/e.cfg"))
    assert grub[grub.index("-O") + 1] == "x86_64-efi" and grub[grub.index("-c") + 1] == "/e.cfg"
    assert {"iso9660", "search_label", "linux", "serial"} <= set(grub)


def test_base_cache_key() -> None:
    spec = load_role("test")
    key = cache.base_key(spec, _config())
    assert key == cache.base_key(spec, _config(output_dir=Path("/elsewhere"), release=True))
    assert key != cache.base_key(spec, _config(source_date_epoch=1))
    assert key != cache.base_key(spec, _config(mirror="http://mirror.invalid/debian"))
    assert key != cache.base_key(load_role("manager"), _config())
    assert cache.base_tarball(Path("/c"), key) == Path(f"/c/base/{key}.tar")


def test_volume_id_and_names() -> None:
    cfg = _config(role="manager", version="1.2.3")
    assert cfg.iso_name == "appliance-manager-1.2.3.iso"
    assert cfg.volume_id == "APPLIANCE_MANAGER_1_2_3"


def test_source_date_epoch_parsing() -> None:
    assert epoch_from_environment({}) is None
    assert epoch_from_environment({"SOURCE_DATE_EPOCH": "1700000000"}) == 1700000000
    import pytest

    from appliance.errors import UsageError

    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
        epoch_from_environment({"SOURCE_DATE_EPOCH": "yesterday"})
