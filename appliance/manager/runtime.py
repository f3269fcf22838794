"""Everything a running manager holds: config, DB engine, job runner, event bell, authenticator."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from appliance.manager.api.auth import Authenticator
from appliance.manager.config import ManagerConfig, StatePaths
from appliance.manager.events import EventBell
from appliance.manager.jobs import JobRunner
from appliance.manager.trust import CertificateAuthority


@dataclass
class ManagerRuntime:
    config: ManagerConfig
    paths: StatePaths
    engine: Engine  # transactions (every write)
    reader: Engine  # autocommit reads for GET requests
    runner: JobRunner
    bell: EventBell
    auth: Authenticator
    job_secrets: dict[str, str] = field(default_factory=dict)  # passwords jobs need, kept out of the DB

    def public_url(self) -> str:
        """How agents reach this manager (manager.toml `public_url`, else this host's name)."""
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        from appliance.manager.config import parse_listen

        _, port = parse_listen(self.config.listen)
        return f"https://{socket.getfqdn()}:{port}"

    def authority(self) -> CertificateAuthority:
        import datetime as dt

        return CertificateAuthority(self.paths, dt.timedelta(days=self.config.leaf_lifetime_days))
