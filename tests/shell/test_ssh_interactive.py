"""The interactive shell over a real SSH terminal, driven with pexpect: completion, help, history, jobs."""

from __future__ import annotations

import httpx
import pexpect

from tests.conftest import ADMIN_PASSWORD
from tests.manager.helpers import create, unique
from tests.shell.conftest import Ssh

PROMPT = "appliance> "


def spawn(ssh: Ssh) -> pexpect.spawn:
    argv = ssh.argv("admin", tty=True)
    child = pexpect.spawn(
        argv[0], argv[1:], env=ssh.env(ADMIN_PASSWORD), encoding="utf-8", timeout=60, dimensions=(40, 200)
    )
    child.expect_exact("logged in as admin (admin)")
    child.expect_exact(PROMPT)
    return child


def test_completion_help_history_and_a_job_that_waits(ssh: Ssh, api: httpx.Client) -> None:
    create(api, "vms", {"name": unique("vm")})
    child = spawn(ssh)
    try:
        # One candidate: completed in place, with a space after it.
        child.send("he\t")
        child.expect_exact("help ")
        child.send("\r")
        child.expect_exact("createEnrollmentToken")
        child.expect_exact(PROMPT)

        # Types after a typed command.
        child.send("list V\t")
        child.expect_exact("list Vm ")
        child.send("\r")
        child.expect(r"id\s+name\s+state\s+vcpus")
        child.expect_exact(PROMPT)

        # Several candidates with no longer common start: they are listed, the line stays.
        child.send("s\t")
        child.expect_exact("set  setDbBackupConfig  show  showCaFingerprint")
        child.send("\x15")  # Ctrl-U: clear the line

        # Attribute names come from the live manager's schema; values of enumerations too.
        name = unique("vm")
        child.send(f"create Vm name={name} dom\t")
        child.expect_exact("domain_type=")
        child.send("h\t")
        child.expect_exact("domain_type=hvm ")
        child.send("\r")
        child.expect(r"Job \d+ succeeded: create VM " + name)
        child.expect_exact(PROMPT)
        assert api.get("/vms", params={"name": name}).json()["items"][0]["domain_type"] == "hvm"

        # Help on one command and type.
        child.sendline("help edit Vm")
        child.expect_exact("vcpus=<integer>")
        child.expect_exact(PROMPT)

        # A job the shell waits for, then history (Up arrow) runs the last line again.
        child.sendline("backupDb")
        child.expect(r"Job (\d+) succeeded: back up the database")
        job_id = int(child.match.group(1))
        child.expect_exact(PROMPT)
        assert api.get(f"/jobs/{job_id}").json()["state"] == "succeeded"
        child.sendline("showCaFingerprint")
        fingerprint = api.get("/ca").json()["fingerprint_sha256"]
        child.expect_exact(fingerprint)
        child.expect_exact(PROMPT)
        child.send("\x1b[A\r")
        child.expect_exact(fingerprint)
        child.expect_exact(PROMPT)

        # Errors keep the session; Ctrl-C at the prompt only clears the line.
        child.sendline("frobnicate")
        child.expect_exact("Error: unknown command 'frobnicate'")
        child.expect_exact(PROMPT)
        child.send("list Vm\x03")
        child.expect_exact("^C")
        child.expect_exact(PROMPT)

        # JSON mode for the rest of the session.
        child.sendline("set outputMode=json")
        child.expect_exact('"outputMode": "json"')
        child.sendline(f"show Vm name={name}")
        child.expect_exact(f'"name": "{name}"')
        child.expect_exact(PROMPT)

        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_without_a_terminal_lines_on_stdin_are_run_in_order(ssh: Ssh, api: httpx.Client) -> None:
    import subprocess

    name = unique("pool")
    script = f"create ServerPool name={name}\nshow ServerPool name={name} outputMode=json\nexit\n"
    proc = subprocess.run(
        ssh.argv("admin"), input=script, env=ssh.env(ADMIN_PASSWORD), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert PROMPT not in proc.stdout  # no prompts when there is no terminal
    assert f'"name": "{name}"' in proc.stdout
    assert api.get("/server-pools", params={"name": name}).json()["total"] == 1
