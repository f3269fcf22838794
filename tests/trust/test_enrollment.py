"""Enrollment by token at install time: the agent pins the manager CA by fingerprint."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import mysql.connector

from appliance import pki
from appliance.manager import dbserver
from appliance.manager.dburl import parse_db_url
from tests.conftest import RunningManager
from tests.trust.conftest import AgentProcess


def _token(manager: RunningManager, *extra: str) -> str:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance",
            "manager",
            "token",
            "create",
            "--state-dir",
            str(manager.state_dir),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def _enroll(
    manager: RunningManager, state_dir: Path, token: str, fingerprint: str | None = None, port: int = 8899
) -> subprocess.CompletedProcess[str]:
    fp = fingerprint or pki.fingerprint(pki.load_cert(manager.ca))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance",
            "agent",
            "enroll",
            "--state-dir",
            str(state_dir),
            "--manager",
            f"https://127.0.0.1:{manager.port}",
            "--fingerprint",
            fp,
            "--token",
            token,
            "--address",
            "127.0.0.1",
            "--agent-port",
            str(port),
        ],
        capture_output=True,
        text=True,
    )


def test_enrolled_server_appears_owned_and_pushes(trust_manager: RunningManager, tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path / "enrolled", dbserver.free_tcp_port(), tmp_path / "enrolled.log")
    agent.state_dir.mkdir()
    token = _token(trust_manager, "--ttl", "1h")
    done = _enroll(trust_manager, agent.state_dir, token, port=agent.port)
    assert done.returncode == 0, done.stderr
    agent.start()
    try:
        with trust_manager.client() as c:
            servers = c.get("/servers").json()["items"]
            assert len(servers) == 1 and servers[0]["state"] == "owned"
            assert servers[0]["agent_fingerprint"] == agent.fingerprint()
            server_id = servers[0]["id"]
            deadline = time.monotonic() + 30
            pushed: list[dict[str, object]] = []
            while time.monotonic() < deadline and not pushed:
                pushed = [
                    e
                    for e in c.get("/events", params={"limit": 1000}).json()["items"]
                    if e["source"] == server_id
                ]
                time.sleep(0.5)
            assert pushed, "the enrolled agent's events did not arrive"
        # the token was for one use
        again = _enroll(trust_manager, tmp_path / "second", token)
        assert again.returncode != 0 and "used up" in again.stderr
    finally:
        agent.stop()


def test_wrong_fingerprint_is_refused_before_anything_is_sent(
    trust_manager: RunningManager, tmp_path: Path
) -> None:
    token = _token(trust_manager)
    wrong = ":".join(["AB"] * 32)
    r = _enroll(trust_manager, tmp_path / "mitm", token, fingerprint=wrong)
    assert r.returncode != 0 and "not the pinned" in r.stderr
    with trust_manager.client() as c:
        assert c.get("/servers").json()["total"] == 0
    # the token was not consumed
    assert _enroll(trust_manager, tmp_path / "ok", token).returncode == 0


def test_unknown_and_expired_tokens_are_refused_and_logged(
    trust_manager: RunningManager, tmp_path: Path
) -> None:
    r = _enroll(trust_manager, tmp_path / "a", "enr_made_up")
    assert r.returncode != 0 and "unknown" in r.stderr
    token = _token(trust_manager, "--ttl", "60s")
    url = parse_db_url(trust_manager.db_url)
    conn = mysql.connector.connect(
        user=url.user, password=url.password, host=url.host, port=url.port, database=url.database
    )
    conn.cursor().execute("UPDATE enrollment_tokens SET expires_at = NOW(6) - INTERVAL 1 SECOND")
    conn.commit()
    conn.close()
    r = _enroll(trust_manager, tmp_path / "b", token)
    assert r.returncode != 0 and "expired" in r.stderr
    with trust_manager.client() as c:
        refused = [
            e
            for e in c.get("/events", params={"limit": 1000}).json()["items"]
            if e["type"] == "server.enrollment_refused"
        ]
        assert len(refused) == 2 and all(e["severity"] == "warning" for e in refused)
        assert c.get("/servers").json()["total"] == 0


def test_csr_for_another_name_is_refused(trust_manager: RunningManager) -> None:
    import httpx

    token = _token(trust_manager)
    key = pki.new_key()
    csr = pki.csr_pem(pki.make_csr(key, "11111111-1111-4111-8111-111111111111")).decode()
    body = {
        "token": token,
        "server_uuid": "22222222-2222-4222-8222-222222222222",
        "hostname": "evil",
        "address": "127.0.0.1",
        "agent_fingerprint": ":".join(["AA"] * 32),
        "csr_pem": csr,
    }
    with trust_manager.client(user="") as anon:
        r = anon.post("/enroll", json=body)
    assert r.status_code == 403 and "only get a certificate for its own" in r.json()["error"]["message"]
    with trust_manager.client() as c:
        assert c.get("/servers").json()["total"] == 0
    del httpx
