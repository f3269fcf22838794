"""Role specs are data: loading, include merging, rendering, and what each role must (not) contain."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import UsageError
from appliance.images.spec import available_roles, load_role, render_files

VARS = {"version": "9.9", "volume_id": "VOL", "appliance_bin": "/usr/local/bin/appliance", "marker": "M"}


def test_buildable_roles_exist() -> None:
    assert {"manager", "server", "test"} <= set(available_roles())


@pytest.mark.parametrize("role", ["manager", "server", "test"])
def test_every_role_renders_without_undefined_variables(role: str) -> None:
    spec = load_role(role)
    files = render_files(spec, VARS)
    assert files, role
    for path, (mode, text) in files.items():
        assert path.startswith("/") and text.strip() and mode & 0o777


def test_test_image_carries_our_package_and_a_marker() -> None:
    spec = load_role("test")
    assert spec.install_appliance and "python3-venv" in spec.packages
    marker = render_files(spec, VARS)["/etc/systemd/system/appliance-boot-marker.service"][1]
    assert "/usr/local/bin/appliance --version" in marker and "M firmware=" in marker


def test_manager_and_server_include_the_live_installer_base() -> None:
    for role in ("manager", "server"):
        spec = load_role(role)
        assert "live-boot" in spec.packages and "linux-image-amd64" in spec.packages
        assert spec.install_appliance
        assert "appliance-installer@tty1.service" in spec.enable_services
        assert "appliance-installer@ttyS0.service" in spec.enable_services
        assert spec.packages.count("live-boot") == 1  # lists merged without duplicates


def test_role_services() -> None:
    manager, server = load_role("manager"), load_role("server")
    assert "mariadb-server" in manager.packages and "xen-system-amd64" not in manager.packages
    assert {"mariadb.service", "appliance-manager.service"} <= set(manager.enable_services)
    assert {"xen-system-amd64", "libvirt-daemon-driver-xen"} <= set(server.packages)
    assert {"libvirtd.service", "appliance-agent.service"} <= set(server.enable_services)
    units = render_files(manager, VARS)
    assert "ExecStart=/usr/local/bin/appliance manager serve --state-dir /var/lib/appliance/manager" in units["/etc/systemd/system/appliance-manager.service"][1]
    units = render_files(server, VARS)
    assert "ExecStart=/usr/local/bin/appliance agent serve --state-dir /var/lib/appliance/agent" in units["/etc/systemd/system/appliance-agent.service"][1]
    assert "dom0_mem=" in units["/etc/default/grub.d/appliance-xen.cfg"][1]


def test_no_host_identity_or_secrets_shipped() -> None:
    for role in ("manager", "server", "test"):
        spec = load_role(role)
        assert "etc/ssh/ssh_host_*" in spec.remove_paths
        assert "etc/resolv.conf" in spec.remove_paths and "etc/hostname" in spec.remove_paths
        for _path, (_mode, text) in render_files(spec, VARS).items():
            assert "password" not in text.lower()
    assert "var/lib/mysql" in load_role("manager").remove_paths


def test_installer_units_run_only_on_the_live_system() -> None:
    files = render_files(load_role("server"), VARS)
    installer = files["/etc/systemd/system/appliance-installer@.service"][1]
    assert "ConditionKernelCommandLine=boot=live" in installer
    assert "ExecStart=/usr/local/bin/appliance install" in installer
    auto = files["/etc/systemd/system/appliance-installer@tty1.service.d/appliance-auto.conf"][1]
    assert "ConditionKernelCommandLine=!inst.auto" in auto  # one automatic install, on ttyS0
    for path in ("/etc/systemd/system/serial-getty@ttyS0.service.d/appliance-live.conf",
                 "/etc/systemd/system/libvirtd.service.d/appliance-live.conf",
                 "/etc/systemd/system/ssh.service.d/appliance-live.conf",
                 "/etc/systemd/system/appliance-ssh-hostkeys.service",
                 "/etc/systemd/system/libvirt-guests.service.d/appliance-live.conf",
                 "/etc/systemd/system/libvirtd.socket.d/appliance-live.conf",
                 "/etc/systemd/system/xen.service.d/appliance-live.conf"):  # fmt: skip
        assert "ConditionKernelCommandLine=!boot=live" in files[path][1]


def test_include_merge_and_override(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('packages = ["x", "y"]\nmenu_title = "A"\n')
    (tmp_path / "b.toml").write_text('include = ["a"]\npackages = ["y", "z"]\nmenu_title = "B"\n')
    spec = load_role("b", tmp_path)
    assert spec.packages == ("x", "y", "z")
    assert spec.menu_title == "B"


def test_bad_specs_are_rejected_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown image role 'nope'") as err:
        load_role("nope", tmp_path)
    (tmp_path / "bad.toml").write_text("packagez = []\n")
    with pytest.raises(UsageError, match="unknown keys"):
        load_role("bad", tmp_path)
    (tmp_path / "loop.toml").write_text('include = ["loop"]\n')
    with pytest.raises(UsageError, match="include loop"):
        load_role("loop", tmp_path)
    (tmp_path / "broken.toml").write_text("packages = [\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_role("broken", tmp_path)
    assert err.value.hint is not None


def test_digest_changes_with_the_spec(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('packages = ["x"]\n')
    first = load_role("a", tmp_path).digest()
    assert load_role("a", tmp_path).digest() == first
    (tmp_path / "a.toml").write_text('packages = ["x", "y"]\n')
    assert load_role("a", tmp_path).digest() != first


def test_the_initramfs_hook_trims_only_what_no_boot_needs() -> None:
    from appliance.images.spec import render_bootstrap_files

    mode, hook = render_bootstrap_files(load_role("server"))["/etc/initramfs-tools/hooks/zz-appliance-module-trim"]
    assert mode == 0o755 and hook.startswith("#!/bin/sh\n")
    trimmed = next(line for line in hook.splitlines() if line.startswith("for tree in")).split()[3:-1]
    assert "drivers/net" in trimmed and "drivers/gpu" in trimmed
    # storage, USB, file systems and the live medium's needs stay in the initrd
    assert not any(t.startswith(("drivers/ata", "drivers/scsi", "drivers/nvme", "drivers/usb", "drivers/block",
                                 "drivers/virtio", "fs/ext4", "fs/squashfs", "fs/isofs", "drivers/md"))
                   for t in trimmed)
    assert "${DESTDIR}" in hook and "prereqs" in hook
