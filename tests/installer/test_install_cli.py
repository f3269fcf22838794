"""`appliance install` end to end on loop disks: interactive through a pty (pexpect) and from kickstarts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

HASH = "$6$appliance$AxJDR6qhUwE37cc612J/PM/AVmGIFshlRzv.Lv82EFlcotnPKo4GNv352sFe3TyDnY/TaOJIM.u8VuLlq1fCu."


def _install_args(loop_disk: str, root: Path, tmp_path: Path, *extra: str) -> list[str]:
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("quiet\n")
    return ["-m", "appliance", "install", "--role", "server", "--target-disk", loop_disk,
            "--source-root", str(root), "--log", str(tmp_path / "install.log"), "--no-finish",
            "--kernel-cmdline", str(cmdline), *extra]


def _has_partition_table(disk: str) -> bool:
    return subprocess.run(["sfdisk", "--dump", disk], capture_output=True).returncode == 0


def _answer_questions(child: pexpect.spawn, confirm: str) -> None:
    child.expect("Appliance server installer")
    child.expect(r"Interface( name \(none detected\))? \[\w+\]: ")
    child.sendline("")
    child.expect(r"Address \[1\]: ")
    child.sendline("2")
    child.expect("Address/prefix: ")
    child.sendline("192.0.2.50")  # no prefix: asked again
    child.expect("give ADDRESS/PREFIX")
    child.expect("Address/prefix: ")
    child.sendline("192.0.2.50/24")
    child.expect(r"Gateway \[192.0.2.1\]: ")
    child.sendline("")
    child.expect(r"DNS server \[192.0.2.1\]: ")
    child.sendline("")
    child.expect(r"Host name \[server\]: ")
    child.sendline("ia-host.example.com")
    child.expect(r"Time zone \[UTC\]: ")
    child.sendline("Etc/UTC")
    child.expect("Root password: ")
    child.sendline("first-try")
    child.expect("Type it again: ")
    child.sendline("typo")
    child.expect("the two passwords differ")
    child.expect("Root password: ")
    child.sendline("root-secret")
    child.expect("Type it again: ")
    child.sendline("root-secret")
    child.expect("Agent password .*: ")
    child.sendline("agent-secret")
    child.expect("Type it again: ")
    child.sendline("agent-secret")
    child.expect(r"Enrol with a manager now .*\[n\]: ")
    child.sendline("n")
    child.expect("Install plan:")
    child.expect("Host name:  ia-host.example.com")
    child.expect("Type 'yes' to install, anything else to stop")
    child.sendline(confirm)


@pytest.mark.slow
def test_interactive_install_over_a_pty(loop_disk, server_root, tmp_path):
    args = _install_args(loop_disk, server_root, tmp_path)
    child = pexpect.spawn(sys.executable, args, encoding="utf-8", timeout=60, dimensions=(24, 80))
    _answer_questions(child, "no")
    child.expect("stopped: nothing was written")
    child.expect(pexpect.EOF)
    assert not _has_partition_table(loop_disk)

    child = pexpect.spawn(sys.executable, args, encoding="utf-8", timeout=120, dimensions=(24, 80))
    _answer_questions(child, "yes")
    child.expect(r"\[1/11   0%\] Running %pre scripts")
    child.expect(r"Copying the system")
    child.expect("The server is installed on")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-o", "ro", f"{loop_disk}p3", str(mnt)], check=True)
    try:
        assert (mnt / "etc/hostname").read_text() == "ia-host.example.com\n"
        network = (mnt / "etc/systemd/network/10-appliance-install.network").read_text()
        assert "Address=192.0.2.50/24" in network and "Gateway=192.0.2.1" in network
        root_hash = (mnt / "etc/shadow").read_text().split(":")[1]
        from appliance.installer.passwords import verify_sha512_crypt

        assert verify_sha512_crypt("root-secret", root_hash)
        agent_hash = (mnt / "var/lib/appliance/set-password.stdin").read_text().strip()
        assert verify_sha512_crypt("agent-secret", agent_hash)
        assert "agent enroll" not in (mnt / "var/lib/appliance/calls.log").read_text()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_bad_kickstart_stops_before_the_disk_is_touched(loop_disk, server_root, tmp_path):
    ks = tmp_path / "bad.ks"
    ks.write_text(f"rootpw --iscrypted {HASH}\nclearpart --all\nraid / --level=1\n")
    proc = subprocess.run([sys.executable, *_install_args(loop_disk, server_root, tmp_path, "--ks", str(ks))],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stderr
    assert f"{ks}:3: 'raid' is not supported" in proc.stdout
    assert f"{ks}:1: a server install needs the agent password" in proc.stdout
    assert "no disk was touched" in proc.stderr
    assert not _has_partition_table(loop_disk)


def test_kickstart_dry_run_shows_the_plan_and_writes_nothing(loop_disk, server_root, tmp_path, repo_root):
    ks = repo_root / "kickstart/ovm3-server.ks"
    proc = subprocess.run([sys.executable, *_install_args(loop_disk, server_root, tmp_path, "--ks", str(ks),
                                                          "--dry-run")],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{ks}:5: warning: 'install' is ignored" in proc.stdout
    assert f"Disk:       {loop_disk}" in proc.stdout
    assert "512 MiB  ext3   /boot" in proc.stdout and "rest of disk  ext3   /" in proc.stdout
    assert "dry run: the answers are valid and the plan fits; no disk was touched" in proc.stdout
    assert not _has_partition_table(loop_disk)


@pytest.mark.slow
def test_oracle_vm_kickstart_installs_with_separate_boot_and_swap(loop_disk, server_root, tmp_path, repo_root):
    ks = repo_root / "kickstart/ovm3-server.ks"
    proc = subprocess.run([sys.executable, *_install_args(loop_disk, server_root, tmp_path, "--ks", str(ks))],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[11/11" in proc.stdout and "100%] Install complete" in proc.stdout
    swap = subprocess.run(["blkid", "-p", "-o", "export", f"{loop_disk}p4"], capture_output=True, text=True,
                          check=True).stdout
    assert "TYPE=swap" in swap and "LABEL=swap" in swap
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-o", "ro", f"{loop_disk}p5", str(mnt)], check=True)
    try:
        fstab = (mnt / "etc/fstab").read_text()
        assert "  /boot  ext3  " in fstab and "  none  swap  sw" in fstab and "  /  ext3  " in fstab
        assert (mnt / "etc/ovs-release-note").read_text() == "ovs-installed\n"  # the %post ran in the target
        assert not any((mnt / "boot").iterdir())  # /boot content lives on its own partition
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    subprocess.run(["mount", "-o", "ro", f"{loop_disk}p3", str(mnt)], check=True)
    try:
        grub_cfg = (mnt / "grub/grub.cfg").read_text()
        assert "multiboot2 /xen-4.17-amd64.gz" in grub_cfg and "dom0_mem=1024M" in grub_cfg
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def _run_with_cmdline(cmdline: str, loop_disk: str, root: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    args = ["-m", "appliance", "install", "--target-disk", loop_disk, "--source-root", str(root),
            "--log", str(tmp_path / "install.log"), "--no-finish", "--dry-run",
            "--kernel-cmdline", str(tmp_path / "cmdline")]
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)


def test_kernel_command_line_names_role_and_kickstart(loop_disk, server_root, tmp_path, repo_root):
    ks = repo_root / "kickstart/server.ks"
    proc = _run_with_cmdline(f"boot=live appliance.role=server ks={ks}", loop_disk, server_root, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"kickstart: {ks}" in proc.stdout and "Role:       server" in proc.stdout
    assert "Manager:    https://manager.example.com:7002 (enrol at install)" in proc.stdout

    # ks.sha256= pins the file: a wrong pin stops before anything else.
    proc = _run_with_cmdline(f"appliance.role=server ks={ks} ks.sha256={'0' * 64}", loop_disk, server_root,
                             tmp_path)
    assert proc.returncode == 1 and "ks.sha256 pins" in proc.stderr

    # inst.auto without any kickstart is an error, never a silent fall-back to questions.
    proc = _run_with_cmdline("inst.auto appliance.role=manager", loop_disk, server_root, tmp_path)
    assert proc.returncode == 2 and "inst.auto asks for an unattended install" in proc.stderr
    assert not _has_partition_table(loop_disk)


def test_console_installer_waits_after_a_failure_instead_of_starting_over(loop_disk, server_root, tmp_path):
    """The live ISO's unit runs `install --console`: a failed unattended install must not repeat by itself."""
    ks = tmp_path / "bad.ks"
    ks.write_text(f"rootpw --iscrypted {HASH}\nclearpart --all\nraid / --level=1\n")
    args = [*_install_args(loop_disk, server_root, tmp_path, "--ks", str(ks)), "--console"]
    child = pexpect.spawn(sys.executable, args, encoding="utf-8", timeout=60, dimensions=(24, 80),
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SHELL": "/bin/sh"})
    try:
        child.expect("'raid' is not supported")
        child.expect("Nothing is retried by itself")
        child.expect("Type one of again, shell, reboot, poweroff: ")
        # it waits: no second attempt shows up on its own
        with pytest.raises(pexpect.TIMEOUT):
            child.expect("'raid' is not supported", timeout=5)
        child.sendline("format the disk")
        child.expect("'format the disk' is not one of the choices")
        child.sendline("ag")  # a unique prefix
        child.expect("'raid' is not supported")
        child.expect("Type one of")
        child.sendline("shell")
        child.sendline("echo in-the-shell-$((40 + 2))")
        child.expect("in-the-shell-42")
        child.sendline("exit")
        child.expect("Type one of")
    finally:
        child.close(force=True)
    assert not _has_partition_table(loop_disk)


def test_finish_waits_for_the_shutdown_it_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    from appliance.installer import install_cli

    ran: list[list[str]] = []
    slept: list[float] = []
    monkeypatch.setattr(install_cli.subprocess, "run",
                        lambda cmd, check: ran.append(cmd) or subprocess.CompletedProcess(cmd, 0))
    monkeypatch.setattr(install_cli.time, "sleep", slept.append)
    install_cli._finish("poweroff", pause_s=0.0)  # a kickstart's poweroff: no pause before it
    assert any(part.endswith("poweroff") for part in ran[0])
    assert slept == [install_cli.SHUTDOWN_WAIT_S]  # then no "what next?" while the system goes down
    slept.clear()
    install_cli._finish("reboot", pause_s=5.0)  # interactive: time to read the last lines
    assert slept == [5.0, install_cli.SHUTDOWN_WAIT_S]
    ran.clear()
    install_cli._finish("none", pause_s=5.0)
    assert ran == []
