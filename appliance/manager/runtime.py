"""Everything a running manager holds: config, DB engine, job runner, event bell, authenticator."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from appliance.manager.api.auth import Authenticator
from appliance.manager.config import ManagerConfig, StatePaths
from appliance.manager.events import EventBell
from appliance.manager.jobs import JobRunner


@dataclass
class ManagerRuntime:
    config: ManagerConfig
    paths: StatePaths
    engine: Engine  # transactions (every write)
    reader: Engine  # autocommit reads for GET requests
    runner: JobRunner
    bell: EventBell
    auth: Authenticator
