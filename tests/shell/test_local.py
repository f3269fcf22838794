"""`appliance cli`: the same engine on this machine, over HTTPS to the manager's WS-API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pexpect

from appliance.manager import dbserver
from tests.conftest import ADMIN_PASSWORD
from tests.manager.helpers import unique
from tests.shell.conftest import CliManager


def cli(
    mgr: CliManager,
    tmp_path: Path,
    *words: str,
    password: str = ADMIN_PASSWORD,
    options: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    pw = tmp_path / "password"
    pw.write_text(password + "\n")
    argv = [sys.executable, "-m", "appliance", "cli", "--manager", f"https://127.0.0.1:{mgr.port}"]
    argv += list(options) or ["--ca", str(mgr.ca)]
    argv += ["--password-file", str(pw), *words]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_one_shot_commands_in_text_and_json(
    cli_manager: CliManager, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique("vm")
    made = cli(cli_manager, tmp_path, "create", "Vm", f"name={name}", "description=made locally")
    assert made.returncode == 0, made.stderr
    vm = api.get("/vms", params={"name": name}).json()["items"][0]
    assert vm["description"] == "made locally"

    shown = cli(cli_manager, tmp_path, "--json", "show", "Vm", name)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == api.get(f"/vms/{vm['id']}").json()

    one_line = cli(cli_manager, tmp_path, f"show Vm name={name}; list ServerPool")
    assert one_line.returncode == 0 and vm["id"] in one_line.stdout

    via_state_dir = cli(
        cli_manager, tmp_path, "showCaFingerprint", options=("--state-dir", str(cli_manager.state_dir))
    )
    assert via_state_dir.stdout.strip() == api.get("/ca").json()["fingerprint_sha256"]


def test_failures_have_messages_and_non_zero_status(cli_manager: CliManager, tmp_path: Path) -> None:
    usage = cli(cli_manager, tmp_path, "create", "Vm", "vcpus=2")
    assert usage.returncode == 2 and "needs name" in usage.stderr
    missing = cli(cli_manager, tmp_path, "show", "Vm", "name=nothing-here")
    assert missing.returncode == 1 and "no Vm matches name=nothing-here" in missing.stderr
    wrong = cli(cli_manager, tmp_path, "list", "Vm", password="not-it-1234")
    assert wrong.returncode == 1 and "wrong user name or password" in wrong.stderr
    no_ca = cli(cli_manager, tmp_path, "list", "Vm", options=("--ca", str(tmp_path / "nope.crt")))
    assert no_ca.returncode == 2 and "pass --ca FILE" in no_ca.stderr
    keys = cli(cli_manager, tmp_path, "addSshKey", "key=ssh-ed25519 bm90LWEta2V5")
    assert keys.returncode == 1 and "not an SSH public key" in keys.stderr

    closed = dbserver.free_tcp_port()
    argv = [sys.executable, "-m", "appliance", "cli", "--manager", f"https://127.0.0.1:{closed}"]
    argv += ["--ca", str(cli_manager.ca), "list", "Vm"]
    gone = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env={**os.environ, "APPLIANCE_PASSWORD": "x"}
    )
    assert gone.returncode == 1 and "cannot reach the manager" in gone.stderr


def test_interactive_local_shell_completes_with_readline(cli_manager: CliManager, tmp_path: Path) -> None:
    env = {**os.environ, "APPLIANCE_PASSWORD": ADMIN_PASSWORD, "HOME": str(tmp_path), "TERM": "xterm"}
    argv = ["-m", "appliance", "cli", "--manager", f"https://127.0.0.1:{cli_manager.port}"]
    child = pexpect.spawn(
        sys.executable, [*argv, "--ca", str(cli_manager.ca)], env=env, encoding="utf-8", timeout=60
    )
    try:
        child.expect_exact("appliance> ")
        child.send("showCa\t")
        child.expect_exact("showCaFingerprint ")
        child.send("\r")
        child.expect(r"([0-9A-F]{2}:){31}[0-9A-F]{2}")
        child.expect_exact("appliance> ")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert "showCaFingerprint" in (tmp_path / ".appliance_cli_history").read_text()
