"""Fixtures for installer tests: loop-device disks and small target root trees."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.installer.passwords import sha512_crypt

BUSYBOX = shutil.which("busybox")

# Stands in for the installed system's `appliance` command (the agent and manager CLIs are built by
# other components): it records each call and its stdin, and fails when /etc/fail-on names the call.
FAKE_APPLIANCE_CLI = """#!/bin/sh
mkdir -p /var/lib/appliance
echo "$*" >> /var/lib/appliance/calls.log
case "$2" in set-password) cat > /var/lib/appliance/set-password.stdin ;; esac
if [ -f /etc/fail-on ] && [ "$(cat /etc/fail-on)" = "$2" ]; then
  echo "appliance: error: $2 refused (test)" >&2
  exit 3
fi
if [ "$2" = "ca-fingerprint" ]; then echo "ab:cd:ef"; fi
if [ "$1 $2" = "manager init" ]; then echo "CA fingerprint (SHA-256): ab:cd:ef"; fi
exit 0
"""


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("loop devices, mounts and chroot need root")


@pytest.fixture
def loop_disk(tmp_path: Path) -> Iterator[str]:
    """A 6 GiB sparse disk image (room for an Oracle VM style layout) attached to a loop device with partition scanning."""
    need_root()
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(6 * 1024 * 1024 * 1024)
    device = subprocess.run(["losetup", "--find", "--show", "--partscan", str(image)],
                            capture_output=True, text=True, check=True).stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["umount", "--recursive", "--quiet", str(tmp_path / "mnt")], check=False,
                       capture_output=True)
        subprocess.run(["losetup", "--detach", device], check=False)


def make_root(root: Path, *, xen: bool = True) -> Path:
    """A tiny but real root tree: busybox, passwd/shadow, a (non-bootable) kernel and initrd pair."""
    assert BUSYBOX, "busybox-static is needed (tools/apt-packages.txt)"
    for name in ("bin", "sbin", "etc/ssh", "boot", "root", "tmp", "var/log", "usr/local/bin",
                 "usr/share/zoneinfo/Etc", "lib/systemd/system", "etc/systemd/system/multi-user.target.wants"):
        (root / name).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    for applet in ("sh", "cat", "echo", "mkdir", "ls", "touch"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc/shadow").chmod(0o640)
    (root / "usr/share/zoneinfo/Etc/UTC").write_bytes(b"TZif2")
    (root / "lib/systemd/system/systemd-networkd.service").write_text("[Unit]\nDescription=networkd\n")
    unit = root / "etc/systemd/system/appliance-installer@.service"
    unit.write_text("[Service]\nExecStart=/usr/local/bin/appliance install\n")
    (root / "etc/systemd/system/multi-user.target.wants/appliance-installer@tty1.service").symlink_to(unit)
    (root / "boot/vmlinuz-6.1.0-13-amd64").write_bytes(b"\0" * 4096)
    (root / "boot/initrd.img-6.1.0-13-amd64").write_bytes(b"\0" * 4096)
    if xen:
        (root / "boot/xen-4.17-amd64.gz").write_bytes(b"\0" * 4096)
    cli = root / "usr/local/bin/appliance"
    cli.write_text(FAKE_APPLIANCE_CLI)
    cli.chmod(0o755)
    return root


@pytest.fixture
def server_root(tmp_path: Path) -> Path:
    return make_root(tmp_path / "root", xen=True)


@pytest.fixture(scope="session")
def password_hash() -> str:
    return sha512_crypt("changeme")
