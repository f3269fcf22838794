"""Discovery by agent password, ownership, release and discovery again, against real agents."""

from __future__ import annotations

import ssl
import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import RunningManager
from tests.manager.helpers import finished_job
from tests.trust.conftest import AGENT_PASSWORD, AgentProcess, start_manager


def _discover(c: httpx.Client, agent: AgentProcess, password: str = AGENT_PASSWORD) -> dict[str, object]:
    body = {"address": "127.0.0.1", "agent_port": agent.port, "agent_password": password}
    return finished_job(c, c.post("/servers", json=body), timeout=60)


def _password_proxy(agent: AgentProcess, password: str = AGENT_PASSWORD) -> xmlrpc.client.ServerProxy:
    ctx = ssl.create_default_context(cafile=str(agent.certificate))
    ctx.check_hostname = False
    return xmlrpc.client.ServerProxy(f"https://oracle:{password}@127.0.0.1:{agent.port}/", context=ctx)


def _events(c: httpx.Client, **params: object) -> list[dict[str, object]]:
    return c.get("/events", params={"limit": 1000, **params}).json()["items"]


def test_wrong_password_is_refused_and_logged(
    trust_manager: RunningManager, agents: Callable[[str], AgentProcess]
) -> None:
    agent = agents("a1")
    with trust_manager.client() as c:
        job = _discover(c, agent, "not-the-password")
        assert job["state"] == "failed" and job["error"]["code"] == "unauthorized"
        assert "agent password" in job["error"]["message"]
        assert c.get("/servers").json()["total"] == 0
        assert any(e["type"] == "job.failed" and "refused the login" in e["message"] for e in _events(c))
    assert _password_proxy(agent).discover_server()["owned"] is False  # nothing changed on the agent


def test_discover_own_release_and_discover_again(
    trust_manager: RunningManager, agents: Callable[[str], AgentProcess], tmp_path: Path, second_db_url: str
) -> None:
    agent = agents("a1")
    with trust_manager.client() as c:
        job = _discover(c, agent)
        assert job["state"] == "succeeded", job
        server_id = job["result"]["id"]
        assert job["result"]["agent_fingerprint"] == agent.fingerprint()
        server = c.get(f"/servers/{server_id}").json()
        assert server["state"] == "owned" and server["agent_fingerprint"] == agent.fingerprint()
        assert server["hardware"]

        # the agent now refuses password logins
        try:
            _password_proxy(agent).discover_server()
            raise AssertionError("password login accepted while owned")
        except (ssl.SSLError, ConnectionResetError):  # the agent now demands a client certificate
            pass

        # its pushed events arrive, authenticated by the certificate the manager issued
        deadline = time.monotonic() + 30
        pushed: list[dict[str, object]] = []
        while time.monotonic() < deadline and not pushed:
            pushed = [e for e in _events(c) if e["source"] == server_id]
            time.sleep(0.5)
        assert pushed, "no event pushed by the agent arrived"

        # a second manager cannot take it
        other = start_manager(tmp_path, second_db_url, name="other")
        try:
            with other.client() as o:
                stolen = _discover(o, agent)
            assert stolen["state"] == "failed"
            assert (
                stolen["error"]["code"] == "forbidden"
                and "owned by another manager" in stolen["error"]["message"]
            )
        finally:
            other.stop()

        # nothing changed for the owner
        assert finished_job(c, c.post(f"/servers/{server_id}/refresh"))["state"] == "succeeded"

        old_cert = (agent.state_dir / "tls" / "client.crt").read_bytes()
        released = finished_job(c, c.post(f"/servers/{server_id}/release"))
        assert released["state"] == "succeeded" and released["result"]["revoked_certificates"] >= 1
        assert c.get(f"/servers/{server_id}").json()["state"] == "unowned"
        assert _password_proxy(agent).discover_server()["owned"] is False

        # the released certificate is refused from now on, and the refusal is logged
        (tmp_path / "old.crt").write_bytes(old_cert)
        ctx = ssl.create_default_context(cafile=str(trust_manager.ca))
        ctx.load_cert_chain(tmp_path / "old.crt", agent.state_dir / "tls" / "agent.key")
        with httpx.Client(base_url=trust_manager.base, verify=ctx) as revoked:
            r = revoked.post("/events/ingest", json={"events": []})
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
        assert any(e["type"] == "agent.certificate_refused" for e in _events(c))

        again = _discover(c, agent)
        assert again["state"] == "succeeded" and again["result"]["id"] == server_id
        assert c.get(f"/servers/{server_id}").json()["state"] == "owned"
