"""Fixtures for the agent tests: in-process agents on loopback with real TLS and libvirt's test
driver, a manager CA (appliance.pki) and credentials, and the ingest receiver."""

from __future__ import annotations

import http.client
import ssl
import uuid
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest

from appliance import pki
from appliance.server import hypervisor
from appliance.server.agent import Agent
from appliance.server.config import AgentConfig, Limits, OutboxLimits
from appliance.server.passwords import hash_password
from appliance.server.store import Store

from .receiver import IngestReceiver

PASSWORD = "agent-test-password"


@pytest.fixture(scope="session")
def test_driver() -> Iterator[libvirt.virConnect]:
    """Holds test:///default open for the session, so its domains outlive one agent (as they
    would outlive an agent restart under libvirtd)."""
    hypervisor._ensure_event_loop()
    conn = libvirt.open("test:///default")
    yield conn
    conn.close()


@dataclass
class ManagerIdentity:
    uuid: str
    ca: pki.KeyPair
    ca_pem: str
    cert_path: Path
    key_path: Path

    def client_cert_for(self, agent: Agent) -> str:
        """What a manager hands over at take_ownership: the agent's own key, signed, CN = server UUID."""
        agent_cert = pki.load_cert(agent.paths.certificate)
        cert = pki.issue_leaf(self.ca, agent_cert.public_key(), agent.server_uuid, server=False)  # type: ignore[arg-type]
        return pki.cert_pem(cert).decode()


def make_identity(
    tmp: Path, name: str, ca: pki.KeyPair | None = None, cn: str | None = None
) -> ManagerIdentity:
    ca = ca or pki.create_ca(f"{name} CA")
    manager_uuid = str(uuid.uuid4())
    key = pki.new_key()
    cert = pki.issue_leaf(ca, key.public_key(), cn or manager_uuid, server=False)
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(pki.cert_pem(cert))
    key_path.write_bytes(pki.key_pem(key))
    return ManagerIdentity(manager_uuid, ca, pki.cert_pem(ca.cert).decode(), cert_path, key_path)


@pytest.fixture
def manager(tmp_path: Path) -> ManagerIdentity:
    return make_identity(tmp_path, "manager")


@dataclass
class RunningAgent:
    agent: Agent
    state_dir: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.agent.port}/"

    def tls_context(self, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        """Verifies the agent against its own (pinned) certificate."""
        ctx = ssl.create_default_context(cafile=str(self.agent.paths.certificate))
        if cert is not None:
            ctx.load_cert_chain(cert, key)
        return ctx

    def proxy(self, password: str | None = PASSWORD, identity: ManagerIdentity | None = None) -> Any:
        if identity is not None:
            ctx = self.tls_context(identity.cert_path, identity.key_path)
            return xmlrpc.client.ServerProxy(self.url, context=ctx, allow_none=True)
        auth = f"oracle:{password}@" if password is not None else ""
        return xmlrpc.client.ServerProxy(
            f"https://{auth}127.0.0.1:{self.agent.port}/", context=self.tls_context(), allow_none=True
        )

    def raw_post(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.agent.port, context=self.tls_context(), timeout=30
        )
        try:
            hdrs = {"Content-Type": "text/xml", **(headers or {})}
            conn.request("POST", "/", body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


AgentFactory = Callable[..., RunningAgent]


@pytest.fixture
def start_agent(tmp_path: Path, test_driver: libvirt.virConnect) -> Iterator[AgentFactory]:
    running: list[Agent] = []

    def start(
        state_dir: Path | None = None,
        hypervisor_uri: str = "test:///default",
        limits: Limits | None = None,
        outbox: OutboxLimits | None = None,
        password: str | None = PASSWORD,
    ) -> RunningAgent:
        state_dir = state_dir or tmp_path / "agent"
        if password is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            store = Store(state_dir / "agent.db")
            store.set_meta("password_hash", hash_password(password))
            store.close()
        config = AgentConfig(
            state_dir=state_dir,
            listen_host="127.0.0.1",
            listen_port=0,
            hypervisor_uri=hypervisor_uri,
            limits=limits or Limits(),
            outbox=outbox or OutboxLimits(),
            push_retry_max=0.5,
        )
        agent = Agent(config)
        agent.start()
        running.append(agent)
        return RunningAgent(agent, state_dir)

    yield start
    for agent in running:
        if agent.rpc is not None and not agent._stop.is_set():
            agent.stop()


def stop_agent(agent: Agent) -> None:
    agent.stop()


@pytest.fixture
def receiver(tmp_path: Path, manager: ManagerIdentity) -> Iterator[IngestReceiver]:
    recv = IngestReceiver(manager.ca, tmp_path)
    recv.start()
    yield recv
    recv.stop()


def vm_spec(name: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "vcpus": 1,
        "memory_mib": 64,
        "disks": [{"path": f"/var/lib/test/{name}.img"}],
    }
    spec.update(extra)
    return spec
