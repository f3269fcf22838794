"""The `appliance agent` commands as a user runs them."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import xmlrpc.client
from pathlib import Path


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", "agent", *args],
        input=stdin,
        text=True,
        capture_output=True,
        timeout=60,
    )


def test_set_password_status_and_serve(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert _run("set-password", "--state-dir", str(state), stdin="first\n").returncode == 0
    pwfile = tmp_path / "pw"
    pwfile.write_text("from-file\n")
    assert _run("set-password", "--state-dir", str(state), "--password-file", str(pwfile)).returncode == 0

    bad = _run("set-password", "--state-dir", str(state), "--crypted", stdin="plain-text")
    assert bad.returncode == 2 and "not a crypt(3) SHA-512 hash" in bad.stderr
    empty = _run("set-password", "--state-dir", str(state), stdin="")
    assert empty.returncode == 2 and "empty" in empty.stderr
    missing = _run("set-password", "--state-dir", str(state), "--password-file", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr

    status = json.loads(_run("status", "--state-dir", str(state)).stdout)
    assert status["password_set"] is True and status["owned"] is False and status["server_uuid"]

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "appliance",
            "agent",
            "serve",
            "--state-dir",
            str(state),
            "--listen",
            "127.0.0.1:0",
            "--hypervisor",
            "test:///default",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"agent {status['server_uuid']} listening on https://127.0.0.1:" in line
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        ctx = ssl.create_default_context(cafile=str(state / "tls/agent.crt"))
        rpc = xmlrpc.client.ServerProxy(f"https://oracle:from-file@127.0.0.1:{port}/RPC2", context=ctx)
        assert rpc.discover_server()["server_uuid"] == status["server_uuid"]
        assert (
            json.loads(_run("status", "--state-dir", str(state)).stdout)["certificate_fingerprint"]
            == (rpc.discover_server()["certificate_fingerprint"])
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_crypted_password_and_port_in_use(tmp_path: Path) -> None:
    state = tmp_path / "state"
    crypted = "$6$abc$K4v3HcZ8yAmpRfxML6S46NCcqy9r4/KdbQpFvqSWsBf4dgySOEOo1DHJTrmn2BsJK2aNmPN8Tfb826D2o9.z51"
    assert _run("set-password", "--state-dir", str(state), "--crypted", stdin=crypted).returncode == 0
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run(
            "serve",
            "--state-dir",
            str(state),
            "--listen",
            f"127.0.0.1:{port}",
            "--hypervisor",
            "test:///default",
        )
    assert (
        result.returncode == 2
        and "cannot listen on 127.0.0.1" in result.stderr
        and "--listen" in result.stderr
    )


def test_unreachable_hypervisor_is_explained_and_the_agent_still_serves(tmp_path: Path) -> None:
    """libvirtd down at boot: the agent says so (with the fix) and answers on its port meanwhile."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "agent", "serve", "--state-dir", str(tmp_path), "--listen",
         "127.0.0.1:0", "--hypervisor", "qemu+unix:///system?socket=/nonexistent/sock"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        seen = []
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if "listening" in line.lower() or "serving" in line.lower():
                break
        text = "".join(seen)
        assert "cannot connect to the hypervisor" in text and "libvirtd" in text, text
        assert proc.poll() is None, text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
