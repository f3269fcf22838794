"""Logging in over SSH: passwords and keys against the manager's users, throttled failures, a kept host key."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx

from tests.conftest import ADMIN_PASSWORD
from tests.manager.helpers import create, finished_job, unique
from tests.shell.conftest import CliManager, Ssh


def fingerprint(public_key: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(public_key)], capture_output=True, text=True, check=True)
    return out.stdout.split()[1]


def new_key(directory: Path, name: str) -> Path:
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


def test_public_key_login_managed_with_commands(ssh: Ssh, user_key: Path, tmp_path: Path) -> None:
    refused = ssh.run("list Vm", key=user_key)
    assert refused.returncode == 255  # no key registered yet

    line = user_key.with_suffix(".pub").read_text().strip()
    added = ssh.run(f'addSshKey key="{line}"')
    assert added.returncode == 0, added.stderr
    fp = fingerprint(user_key.with_suffix(".pub"))
    assert fp in added.stdout

    by_key = ssh.run("showCaFingerprint", key=user_key)
    assert by_key.returncode == 0, by_key.stderr
    listed = json.loads(ssh.run("listSshKey outputMode=json", key=user_key).stdout)
    assert [{k: v for k, v in i.items() if k != "id"} for i in listed["items"]] == [
        {"fingerprint": fp, "type": "ssh-ed25519", "comment": "tester@cli"}
    ]

    other = new_key(tmp_path, "other")
    assert ssh.run("list Vm", key=other).returncode == 255  # a key nobody added

    bad = ssh.run('addSshKey key="ssh-ed25519 not-base64"')
    assert bad.returncode == 1 and "not an SSH public key" in bad.stderr

    removed = ssh.run(f"deleteSshKey fingerprint={fp}")
    assert removed.returncode == 0, removed.stderr
    assert ssh.run("list Vm", key=user_key).returncode == 255


def test_keys_keep_working_after_a_password_change(ssh: Ssh, api: httpx.Client, tmp_path: Path) -> None:
    user, password = unique("bob"), "bob-password-1"
    user_id = create(api, "users", {"name": user, "password": password, "role": "readonly"})
    key = new_key(tmp_path, "bob")
    line = key.with_suffix(".pub").read_text().strip()
    assert ssh.run(f'addSshKey key="{line}"', user=user, password=password).returncode == 0
    assert ssh.run("list Vm", user=user, key=key).returncode == 0

    job = finished_job(api, api.patch(f"/users/{user_id}", json={"password": "bob-password-2"}))
    assert job["state"] == "succeeded"
    # keys live in the manager beside the user, so no password copy exists that could go stale
    assert ssh.run("list Vm", user=user, key=key).returncode == 0
    assert ssh.run("list Vm", user=user, password="bob-password-1").returncode == 255
    assert ssh.run("list Vm", user=user, password="bob-password-2").returncode == 0

    # Only admins manage other users' keys.
    forbidden = ssh.run("listSshKey user=admin", user=user, key=key)
    assert forbidden.returncode == 1 and "only admins" in forbidden.stderr
    assert fingerprint(key.with_suffix(".pub")) in ssh.run(f"listSshKey user={user}").stdout


def test_failed_logins_are_logged_and_locked_out_per_address(ssh: Ssh, cli_manager: CliManager) -> None:
    source = "127.0.0.9"  # a loopback address of its own, so other tests keep logging in from 127.0.0.1
    for _ in range(5):
        wrong = ssh.run("list Vm", password="not-the-password", source=source)
        assert wrong.returncode == 255
    locked = subprocess.run(
        [*ssh.argv("admin", source=source, log_level="INFO"), "list Vm"],
        env=ssh.env(ADMIN_PASSWORD),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert locked.returncode == 255
    assert re.search(r"too many failed logins from 127\.0\.0\.9; try again in \d+ s", locked.stderr), (
        locked.stderr
    )
    log = cli_manager.log_text()
    assert log.count("SSH login failed: user 'admin' from 127.0.0.9") == 5
    assert "address locked out" in log
    assert "from 127.0.0.9 refused: locked out" in log
    # Other addresses are not affected.
    assert ssh.run("list Vm").returncode == 0


def test_host_key_is_made_once_and_kept_across_restarts(ssh: Ssh, cli_manager: CliManager) -> None:
    key_file = cli_manager.state_dir / "cli" / "ssh_host_ed25519_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    before = key_file.read_bytes()
    assert ssh.run("list Vm").returncode == 0  # known_hosts now has the key
    cli_manager.stop()
    cli_manager.start()
    assert key_file.read_bytes() == before
    strict = ssh.run("list Vm", strict="yes")
    assert strict.returncode == 0, strict.stderr


def test_each_connection_has_its_own_ws_api_session_ended_at_logout(ssh: Ssh, api: httpx.Client) -> None:
    import time

    user, password = unique("carol"), "carol-password-1"
    create(api, "users", {"name": user, "password": password, "role": "readonly"})
    assert ssh.run("list Vm", user=user, password=password).returncode == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        open_sessions = [s for s in api.get("/sessions").json()["items"] if s["user"] == user]
        if not open_sessions:
            break
        time.sleep(0.2)
    assert open_sessions == []
