"""`appliance lab` without QEMU: kickstarts (checked by the real validator), the input-keyed
artifact cache, the status file, and the CLI's answers when no lab runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.installer.passwords import sha512_crypt
from appliance.installer.validate import validate_kickstart
from appliance.lab.status import HostStatus, LabStatus, live_status, read_status, write_status
from qemu_tests.artifacts import ArtifactCache, source_digest
from qemu_tests.kickstarts import HostKickstart, manager_kickstart, server_kickstart
from qemu_tests.lab import LabSecrets

HOST = HostKickstart("server1.lab", "52:54:00:12:01:02", "192.168.1.2", sha512_crypt("root-pw"),
                     "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG4rT3vTt99Ox5kndS4HmgTrKBT8SKzhK4rhGkEVGlCI lab")  # fmt: skip
FP = ":".join(["AB"] * 32)


def test_lab_kickstarts_pass_the_installers_validation() -> None:
    manager = validate_kickstart(manager_kickstart(HOST, "admin-password-1"), "manager.ks", "manager", "auto")
    assert not manager.errors, manager.problems
    assert manager.answers is not None and manager.answers.ssh_keys
    enrol = server_kickstart(HOST, sha512_crypt("agent-pw"), "https://192.168.1.1:7002", FP, "enr_abc")
    server = validate_kickstart(enrol, "server.ks", "server", "auto")
    assert not server.errors, server.problems
    assert server.answers is not None and server.answers.server is not None
    assert server.answers.server.enrollment is not None
    plain = validate_kickstart(server_kickstart(HOST, sha512_crypt("agent-pw")), "s.ks", "server", "auto")
    assert not plain.errors and plain.answers is not None and plain.answers.server is not None
    assert plain.answers.server.enrollment is None


def test_source_digest_follows_the_package_source(tmp_path: Path) -> None:
    (tmp_path / "appliance").mkdir()
    (tmp_path / "appliance" / "a.py").write_text("x = 1\n")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    first = source_digest(tmp_path)
    (tmp_path / "appliance" / "__pycache__").mkdir()
    (tmp_path / "appliance" / "__pycache__" / "a.pyc").write_bytes(b"junk")
    (tmp_path / "notes.txt").write_text("not part of the wheel")
    assert source_digest(tmp_path) == first
    (tmp_path / "appliance" / "a.py").write_text("x = 2\n")
    assert source_digest(tmp_path) != first


def test_artifact_cache_publishes_whole_sets_and_prunes_old_ones(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    built = tmp_path / "built.iso"
    for n, key in enumerate(("k1", "k2", "k3")):
        built.write_bytes(b"iso" + bytes([n]))
        stored = cache.store_iso("server", key, built)
        os.utime(stored, (1000 + n, 1000 + n))
    assert cache.iso("server", "k3").read_bytes() == b"iso\x02"
    assert not cache.iso("server", "k1").exists()  # two kept: the newest and one before it
    assert cache.iso("server", "k2").exists()
    staging = cache.staging("lab", "d1")
    (staging / "manager.qcow2").write_bytes(b"disk")
    assert not cache.disks("lab", "d1").exists()  # not visible until committed
    done = cache.commit_disks(staging, "lab", "d1")
    assert (done / "manager.qcow2").read_bytes() == b"disk" and not staging.exists()


def test_lab_secrets_are_fresh_and_the_key_is_openssh() -> None:
    a, b = LabSecrets.generate(), LabSecrets.generate()
    assert a.root_password != b.root_password and a.admin_password != a.agent_password
    assert a.ssh_private_key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert a.ssh_public_key.startswith("ssh-ed25519 ")


def test_status_file_round_trip_and_a_dead_supervisor_reads_as_down(tmp_path: Path) -> None:
    status = LabStatus(state="ready", pid=os.getpid(), api_url="https://127.0.0.1:4000/api/v1",
                       admin_password="pw", fingerprint=FP,
                       hosts=(HostStatus("manager", "192.168.1.1", {"22": 4001, "7002": 4000}),))  # fmt: skip
    write_status(tmp_path, status)
    assert (tmp_path / "status.json").stat().st_mode & 0o077 == 0
    assert read_status(tmp_path) == status
    text = "\n".join(status.describe())
    assert "https://127.0.0.1:4000/ui/" in text and "7002->127.0.0.1:4000" in text
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_status(tmp_path, LabStatus(**{**status.__dict__, "pid": dead.pid}))
    gone = live_status(tmp_path)
    assert gone is not None and gone.state == "down" and str(dead.pid) in gone.message


def _appliance(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("verb", ["status", "down", "ssh"])
def test_lab_commands_without_a_lab_say_so(tmp_path: Path, verb: str) -> None:
    args = ["lab", verb, "--workdir", str(tmp_path / "none")] + (["manager"] if verb == "ssh" else [])
    proc = _appliance(*args, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert "no lab" in out or "no running lab" in out, out
    assert proc.returncode == {"status": 3, "down": 0, "ssh": 2}[verb], out


def test_lab_up_checks_the_server_count_before_starting_anything(tmp_path: Path) -> None:
    proc = _appliance("lab", "up", "--servers", "0", "--workdir", str(tmp_path / "lab"), cwd=tmp_path)
    assert proc.returncode == 2 and "1 to 8 servers" in proc.stderr
    assert not (tmp_path / "lab").exists()


def test_install_progress_echoes_the_installers_step_lines(tmp_path: Path) -> None:
    import time
    from types import SimpleNamespace

    from qemu_tests.lab import InstallProgress

    log = tmp_path / "server1-console.log"
    log.write_bytes(b"old boot noise\n[9/11  85%] Setting up the role\n")  # before: not repeated
    said: list[str] = []
    machine = SimpleNamespace(name="server1", console_log=log)
    with InstallProgress([machine], said.append):  # type: ignore[list-item]
        with log.open("ab") as out:
            out.write(b"\x1b[0m[5/11  10%] Copying the system\r\n  copying the system: 10%\r\n[6/11  66%] Wri")
        time.sleep(2.5)
        with log.open("ab") as out:
            out.write(b"ting fstab\n")
        time.sleep(2.5)
    assert said == ["  server1: [5/11  10%] Copying the system", "  server1: [6/11  66%] Writing fstab"]


def test_a_server_counts_as_up_only_with_a_contact_after_the_boot() -> None:
    import datetime as dt

    from qemu_tests.lab import contact_after

    boot = dt.datetime(2026, 11, 26, 21, 0, tzinfo=dt.UTC)
    assert contact_after("2026-11-26T21:00:05.5Z", boot)
    assert not contact_after("2026-11-26T20:54:34.788637Z", boot)  # from the install, before this boot
    assert not contact_after(None, boot) and not contact_after("", boot)


def test_lab_ssh_takes_the_workdir_after_the_host_name() -> None:
    from appliance.lab.cli import leading_workdir

    assert leading_workdir(["--workdir", "lab2", "xl", "list"]) == (Path("lab2"), ["xl", "list"])
    assert leading_workdir(["--workdir=lab2"]) == (Path("lab2"), [])
    assert leading_workdir(["xl", "list", "--workdir", "x"]) == (None, ["xl", "list", "--workdir", "x"])
    assert leading_workdir([]) == (None, [])
