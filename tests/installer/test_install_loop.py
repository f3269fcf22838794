"""Real install steps onto a loop-device disk image: partition table, filesystems, fstab, GRUB, roles."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from appliance.installer.cleanup import CleanupStack
from appliance.installer.disks import describe_target
from appliance.installer.install import InstallContext, InstallFailed, make_plan, run_install
from appliance.installer.layout import GUID_BIOS_BOOT, GUID_ESP, GUID_ROOT_X86_64
from appliance.installer.runner import InstallLog
from appliance.installer.validate import validate_kickstart

SERVER_KS = """\
network --bootproto=static --device=eth0 --ip=192.0.2.21 --netmask=255.255.255.0 --gateway=192.0.2.1 --nameserver=192.0.2.1 --hostname=srv1.example.com
rootpw --iscrypted {hash}
sshkey --username=root "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtestkey0000000000000000000000000000000000 t@x"
timezone Etc/UTC
clearpart --all --initlabel
autopart
bootloader --append="dom0_mem=2048M quiet"
ovsagent --iscrypted {hash}
ovsmgmntif eth0
enroll --manager=https://manager.example.com:7002 --fingerprint={fp} --token=tok-123
%post
echo post-ran > /root/post-marker
%end
"""
FINGERPRINT = ":".join(["ab"] * 32)


def _answers(password_hash: str, text: str = SERVER_KS, role: str = "server"):
    result = validate_kickstart(text.format(hash=password_hash, fp=FINGERPRINT), "test.ks", role)
    assert result.ok, result.report()
    return result.answers


def _install(answers, loop_disk: str, root: Path, tmp_path: Path, medium: Path | None = None,
             image: Path | None = None) -> InstallContext:
    disk = describe_target(loop_disk)
    log = InstallLog(tmp_path / "install.log")
    messages: list[str] = []
    medium = medium or tmp_path / "no-medium"
    ctx = InstallContext(answers=answers.with_target_disk(loop_disk), disk=disk,
                         layout=make_plan(answers, disk, root, medium, image), source_root=root, log=log,
                         cleanup=CleanupStack(log.write), say=messages.append, medium=medium,
                         source_image=image)
    ctx.messages = messages  # type: ignore[attr-defined]
    run_install(ctx)
    return ctx


def _mount(device: str, where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-o", "ro", device, str(where)], check=True)


def _umount(where: Path) -> None:
    subprocess.run(["umount", str(where)], check=True)


def _blkid(device: str, tag: str) -> str:
    return subprocess.run(["blkid", "-p", "-s", tag, "-o", "value", device], capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.mark.slow
def test_server_install_on_loop_disk(loop_disk, server_root, tmp_path, password_hash):
    ctx = _install(_answers(password_hash), loop_disk, server_root, tmp_path)
    assert any("100%" in m for m in ctx.messages)  # type: ignore[attr-defined]

    table = json.loads(subprocess.run(["sfdisk", "--json", loop_disk], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    assert table["label"] == "gpt"
    types = [p["type"].upper() for p in table["partitions"]]
    assert types == [GUID_BIOS_BOOT, GUID_ESP, GUID_ROOT_X86_64]

    # BIOS: GRUB's core.img went into the BIOS boot partition, boot.img into the MBR.
    with open(f"{loop_disk}p1", "rb") as bios:
        core = bios.read(1024 * 1024)
    assert core.count(b"\0") < len(core) - 16 * 1024, "BIOS boot partition is empty"
    with open(loop_disk, "rb") as whole:
        mbr = whole.read(512)
    assert mbr[510:512] == b"\x55\xaa" and b"GRUB" in mbr

    assert _blkid(f"{loop_disk}p2", "TYPE") == "vfat"
    assert _blkid(f"{loop_disk}p3", "TYPE") == "ext4"
    mnt = tmp_path / "mnt"
    _mount(f"{loop_disk}p3", mnt)
    try:
        fstab = (mnt / "etc/fstab").read_text()
        assert f"UUID={_blkid(loop_disk + 'p3', 'UUID')}  /  ext4" in fstab
        assert f"UUID={_blkid(loop_disk + 'p2', 'UUID')}  /boot/efi  vfat" in fstab
        # a slow udev must not drop the host into emergency mode over its ESP
        assert "umask=0077,nofail,x-systemd.device-timeout=10min" in fstab
        grub_cfg = (mnt / "boot/grub/grub.cfg").read_text()
        root_uuid = _blkid(loop_disk + "p3", "UUID")
        xen_line = next(line for line in grub_cfg.splitlines() if "multiboot2 /boot/xen-4.17-amd64.gz" in line)
        assert "dom0_mem=2048M" in xen_line and "1024M" not in xen_line and "com1=115200,8n1" in xen_line
        assert f"module2 /boot/vmlinuz-6.1.0-13-amd64 root=UUID={root_uuid} ro console=hvc0 quiet" in grub_cfg
        assert "set default=xen" in grub_cfg and "rescue" in grub_cfg
        assert (mnt / "boot/grub/i386-pc/normal.mod").exists()
        assert (mnt / "boot/grub/x86_64-efi/normal.mod").exists()
        assert (mnt / "etc/hostname").read_text() == "srv1.example.com\n"
        shadow = (mnt / "etc/shadow").read_text()
        assert shadow.startswith(f"root:{password_hash}:")
        network = (mnt / "etc/systemd/network/10-appliance-install.network").read_text()
        assert "Name=eth0" in network and "Address=192.0.2.21/24" in network
        assert (mnt / "etc/systemd/system/multi-user.target.wants/systemd-networkd.service").is_symlink()
        assert not list((mnt / "etc/systemd/system").glob("*.wants/appliance-installer*"))
        assert "ssh-ed25519" in (mnt / "root/.ssh/authorized_keys").read_text()
        keys = sorted(k.name for k in (mnt / "etc/ssh").glob("ssh_host_*_key"))
        assert keys == ["ssh_host_ecdsa_key", "ssh_host_ed25519_key"]
        assert "root@srv1.example.com" in (mnt / "etc/ssh/ssh_host_ed25519_key.pub").read_text()
        sshd = (mnt / "etc/ssh/sshd_config.d/10-appliance-host-keys.conf").read_text()
        assert "HostKey /etc/ssh/ssh_host_ed25519_key" in sshd and "rsa" not in sshd
        calls = (mnt / "var/lib/appliance/calls.log").read_text().splitlines()
        assert calls[0] == "agent set-password --state-dir /var/lib/appliance/agent --crypted"
        assert calls[1] == (f"agent enroll --state-dir /var/lib/appliance/agent "
                            f"--manager https://manager.example.com:7002 --fingerprint "
                            f"{FINGERPRINT} --token tok-123 --hostname srv1.example.com")
        assert (mnt / "var/lib/appliance/set-password.stdin").read_text().strip() == password_hash
        assert (mnt / "root/post-marker").read_text() == "post-ran\n"
        assert "Install complete" not in (mnt / "var/log/appliance-install.log").read_text()
        assert "step 11/11" in (mnt / "var/log/appliance-install.log").read_text()
    finally:
        _umount(mnt)
    # EFI: the removable-media path every UEFI firmware boots (read with mtools: no vfat mount needed).
    efi = tmp_path / "BOOTX64.EFI"
    subprocess.run(["mcopy", "-i", f"{loop_disk}p2", "::/EFI/BOOT/BOOTX64.EFI", str(efi)], check=True,
                   env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"})
    image = efi.read_bytes()
    assert image[:2] == b"MZ" and len(image) > 100_000  # a PE/COFF EFI application
    root_uuid = _blkid(loop_disk + "p3", "UUID")
    assert f"search --no-floppy --fs-uuid --set=root {root_uuid}".encode() in image
    # Nothing left mounted or bound.
    assert str(ctx.target) not in Path("/proc/self/mountinfo").read_text()


@pytest.mark.slow
def test_failed_enrollment_stops_loudly_and_leaves_nothing_mounted(loop_disk, server_root, tmp_path,
                                                                   password_hash):
    (server_root / "etc/fail-on").write_text("enroll")
    with pytest.raises(InstallFailed) as info:
        _install(_answers(password_hash), loop_disk, server_root, tmp_path)
    message = str(info.value)
    assert "Setting up the role" in message and "enrollment with the manager" in message
    assert str(tmp_path / "install.log") in message
    assert "appliance-target-" not in Path("/proc/self/mountinfo").read_text()
    # Running it again (after fixing the cause) is safe and completes.
    (server_root / "etc/fail-on").unlink()
    _install(_answers(password_hash), loop_disk, server_root, tmp_path)


MANAGER_KS = """\
network --bootproto=dhcp --hostname=mgr.example.com
rootpw --iscrypted {hash}
clearpart --all --initlabel
autopart
manageradmin admin-secret-1
"""


@pytest.mark.slow
def test_manager_install_gives_the_database_its_own_filesystem(loop_disk, tmp_path, password_hash):
    from .conftest import make_root

    root = make_root(tmp_path / "root", xen=False)
    ctx = _install(_answers(password_hash, MANAGER_KS, "manager"), loop_disk, root, tmp_path)
    assert any("CA fingerprint" in m and "ab:cd:ef" in m for m in ctx.messages)  # type: ignore[attr-defined]
    table = json.loads(subprocess.run(["sfdisk", "--json", loop_disk], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]["partitions"]
    assert [p.get("name") for p in table] == ["bios", "esp", "appliance-db", "root"]
    mnt = tmp_path / "mnt"
    _mount(f"{loop_disk}p4", mnt)
    try:
        fstab = (mnt / "etc/fstab").read_text()
        assert f"UUID={_blkid(loop_disk + 'p3', 'UUID')}  /var/lib/mysql  ext4  errors=remount-ro,x-systemd.device-timeout=10min  0  2" in fstab
        calls = (mnt / "var/lib/appliance/calls.log").read_text().splitlines()
        assert calls[0].startswith("manager init --state-dir /var/lib/appliance/manager --db-url mysql://")
        assert "--admin-password-file /root/.appliance-admin-password --start-db /var/lib/mysql --name mgr.example.com" in calls[0]
        assert len(calls) == 1  # the fingerprint comes from init's output, not a second chroot run
        assert not (mnt / "root/.appliance-admin-password").exists()  # the secret does not stay behind
        grub_cfg = (mnt / "boot/grub/grub.cfg").read_text()
        assert "multiboot2" not in grub_cfg and "set default=linux" in grub_cfg
    finally:
        _umount(mnt)


@pytest.mark.slow
def test_kernel_and_initrd_come_from_the_live_medium(loop_disk, tmp_path, password_hash):
    """The image's root filesystem has no kernel in /boot: the installer copies the ISO's /live pair."""
    from .conftest import make_root

    root = make_root(tmp_path / "root", xen=False)
    for old in (root / "boot").iterdir():
        old.unlink()
    (root / "usr/lib/modules/6.1.0-99-amd64").mkdir(parents=True)
    medium = tmp_path / "medium"
    (medium / "live").mkdir(parents=True)
    (medium / "live/vmlinuz").write_bytes(b"kernel" * 1000)
    (medium / "live/initrd.img").write_bytes(b"initrd" * 1000)
    _install(_answers(password_hash, MANAGER_KS, "manager"), loop_disk, root, tmp_path, medium)
    mnt = tmp_path / "mnt"
    _mount(f"{loop_disk}p4", mnt)
    try:
        assert (mnt / "boot/vmlinuz-6.1.0-99-amd64").read_bytes() == b"kernel" * 1000
        assert (mnt / "boot/initrd.img-6.1.0-99-amd64").read_bytes() == b"initrd" * 1000
        grub_cfg = (mnt / "boot/grub/grub.cfg").read_text()
        assert "linux /boot/vmlinuz-6.1.0-99-amd64 root=UUID=" in grub_cfg
        assert "initrd /boot/initrd.img-6.1.0-99-amd64" in grub_cfg
    finally:
        _umount(mnt)


@pytest.mark.slow
def test_the_live_image_is_unpacked_with_owners_links_and_without_dev(loop_disk, tmp_path, password_hash):
    """From the ISO the installer unsquashes the image: same files, owners, modes, hard links, xattrs."""
    from .conftest import make_root

    root = make_root(tmp_path / "root", xen=False)
    (root / "var/lib/agent").mkdir(parents=True)
    owned = root / "var/lib/agent/state"
    owned.write_text("state")
    os.chown(owned, 123, 456)
    owned.chmod(0o640)
    os.link(root / "etc/passwd", root / "etc/passwd.hardlink")
    os.setxattr(root / "etc/group", "user.appliance", b"kept")
    (root / "dev").mkdir()
    (root / "dev/stdin").symlink_to("/proc/self/fd/0")
    image = tmp_path / "medium/live/filesystem.squashfs"
    image.parent.mkdir(parents=True)
    subprocess.run(["mksquashfs", str(root), str(image), "-quiet", "-no-progress", "-comp", "zstd"], check=True)
    (root / "etc/only-in-the-tree").write_text("rsync would copy this; the image does not have it")
    ctx = _install(_answers(password_hash, MANAGER_KS, "manager"), loop_disk, root, tmp_path, image=image)
    assert any(m.startswith("  copying the system: ") for m in ctx.messages)  # type: ignore[attr-defined]
    assert "$ unsquashfs -f -d" in (tmp_path / "install.log").read_text()
    mnt = tmp_path / "mnt"
    _mount(f"{loop_disk}p4", mnt)
    try:
        copied = mnt / "var/lib/agent/state"
        assert (copied.stat().st_uid, copied.stat().st_gid, copied.stat().st_mode & 0o777) == (123, 456, 0o640)
        assert (mnt / "etc/passwd").stat().st_ino == (mnt / "etc/passwd.hardlink").stat().st_ino
        assert os.getxattr(mnt / "etc/group", "user.appliance") == b"kept"
        assert (mnt / "dev").is_dir() and not list((mnt / "dev").iterdir())
        assert not (mnt / "etc/only-in-the-tree").exists()
        assert (mnt / "bin/busybox").read_bytes() == (root / "bin/busybox").read_bytes()
        assert (mnt / "var/lib/appliance/calls.log").is_file()  # the role step ran on the unpacked system
    finally:
        _umount(mnt)
