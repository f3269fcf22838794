"""Agent configuration (frozen) and the layout of its state directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 8899
DEFAULT_LISTEN_HOST = "0.0.0.0"


def default_hypervisor_uri(xen_dom0: bool | None = None) -> str:
    """``xen:///system`` in a Xen dom0 (the server appliance), otherwise ``qemu:///system``."""
    if xen_dom0 is None:
        xen_dom0 = Path("/proc/xen/capabilities").exists()
    return "xen:///system" if xen_dom0 else "qemu:///system"


@dataclass(frozen=True)
class StatePaths:
    """Where the agent keeps its files inside ``--state-dir``."""

    root: Path

    @property
    def database(self) -> Path:
        return self.root / "agent.db"

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def key(self) -> Path:
        return self.tls_dir / "agent.key"

    @property
    def certificate(self) -> Path:
        return self.tls_dir / "agent.crt"

    @property
    def client_certificate(self) -> Path:
        """Certificate issued by the owning manager's CA for the agent key (used to push)."""
        return self.tls_dir / "client.crt"

    @property
    def manager_ca(self) -> Path:
        return self.tls_dir / "manager-ca.pem"

    @property
    def console_dir(self) -> Path:
        return self.root / "console"

    def ensure(self) -> None:
        for d in (self.root, self.tls_dir, self.console_dir):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.tls_dir, 0o700)


@dataclass(frozen=True)
class Limits:
    """Defences of the XML-RPC endpoint."""

    max_request_bytes: int = 1 << 20
    max_xml_depth: int = 32
    max_connections: int = 512
    handshake_timeout: float = 10.0
    idle_timeout: float = 60.0


@dataclass(frozen=True)
class OutboxLimits:
    max_events: int = 50_000
    max_samples: int = 200_000
    events_per_post: int = 1_000
    samples_per_post: int = 10_000


@dataclass(frozen=True)
class AgentConfig:
    state_dir: Path
    listen_host: str = DEFAULT_LISTEN_HOST
    listen_port: int = DEFAULT_PORT
    hypervisor_uri: str = "qemu:///system"
    qemu_accel: str = "tcg"
    limits: Limits = Limits()
    outbox: OutboxLimits = OutboxLimits()
    push_retry_max: float = 30.0

    @property
    def paths(self) -> StatePaths:
        return StatePaths(self.state_dir)
