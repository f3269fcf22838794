"""Pure pieces: cleanup stack order, layout planning, fstab, grub.cfg option split, shadow edits."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import ConfigError, UsageError
from appliance.installer.answers import Answers, PartitionAnswer
from appliance.installer.bootloader import split_append
from appliance.installer.cleanup import CleanupStack
from appliance.installer.layout import partition_device, plan_layout
from appliance.installer.target_config import set_shadow_password

GIB = 1024**3


def test_cleanup_runs_in_reverse_and_survives_failures() -> None:
    done: list[str] = []

    def fail() -> None:
        raise RuntimeError("busy")

    with CleanupStack(done.append) as stack:
        stack.push("first", lambda: done.append("1"))
        stack.push("broken", fail)
        stack.push("last", lambda: done.append("3"))
    assert done[0] == "3" and "1" in done
    assert stack.failures == ["cleanup failed: broken: busy"] and len(stack) == 0


def test_partition_device_names() -> None:
    assert partition_device("/dev/sda", 2) == "/dev/sda2"
    assert partition_device("/dev/nvme0n1", 2) == "/dev/nvme0n1p2"
    assert partition_device("/dev/loop3", 1) == "/dev/loop3p1"


def test_layouts() -> None:
    server = Answers(role="server", hostname="s", root_password_hash="x")
    layout = plan_layout(server, "/dev/sda", 20 * GIB)
    assert [p.name for p in layout.partitions] == ["bios", "esp", "root"]
    assert layout.partitions[-1].size_mib == 0  # takes the rest
    assert 'type=21686148-6449-6E6F-744E-656564454649, name="bios"' in layout.sfdisk_script()
    manager = Answers(role="manager", hostname="m", root_password_hash="x")
    names = [p.mountpoint for p in plan_layout(manager, "/dev/sda", 20 * GIB).mounted()]
    assert names == ["/", "/boot/efi", "/var/lib/mysql"]
    with pytest.raises(UsageError, match="root filesystem would get"):
        plan_layout(server, "/dev/sda", 1 * GIB, min_root_mib=2000)
    big = Answers(role="server", hostname="s", root_password_hash="x",
                  partitions=(PartitionAnswer("/", 30000, grow=True),))
    with pytest.raises(UsageError, match="need 30000 MiB"):
        plan_layout(big, "/dev/sda", 20 * GIB)


def test_xen_options_go_on_the_hypervisor_line() -> None:
    assert split_append("dom0_mem=2G quiet com1=9600,8n1 nomodeset") == (
        ["dom0_mem=2G", "com1=9600,8n1"], ["quiet", "nomodeset"])


def test_shadow_edit() -> None:
    text = "root:*:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n"
    assert set_shadow_password(text, "root", "$6$s$h").startswith("root:$6$s$h:19000")
    assert set_shadow_password(text, "root", None).startswith("root:!:")
    with pytest.raises(ConfigError):
        set_shadow_password("bin:*:1::::::\n", "root", "$6$s$h")


def test_only_one_install_at_a_time(tmp_path: Path) -> None:
    import os

    from appliance.errors import UsageError
    from appliance.installer.install_cli import take_install_lock

    lock = tmp_path / "install.lock"
    first = take_install_lock("/dev/vda", lock)
    try:
        with pytest.raises(UsageError, match="another install is already running"):
            take_install_lock("/dev/vda", lock)
    finally:
        os.close(first)
    os.close(take_install_lock("/dev/vda", lock))  # free again once the first one ends
