"""A manager and real agent processes on loopback (libvirt's test driver), for the trust tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tomli_w

from appliance import pki
from appliance.manager import dbserver
from tests.conftest import RunningManager, init_manager

AGENT_PASSWORD = "agent-pw-1234"


@dataclass
class AgentProcess:
    state_dir: Path
    port: int
    log_path: Path
    password: str = AGENT_PASSWORD
    proc: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def certificate(self) -> Path:
        return self.state_dir / "tls" / "agent.crt"

    def fingerprint(self) -> str:
        return pki.fingerprint(pki.load_cert(self.certificate))

    def start(self) -> None:
        if not (self.state_dir / "agent.db").exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "appliance",
                    "agent",
                    "set-password",
                    "--state-dir",
                    str(self.state_dir),
                ],
                input=self.password.encode(),
                check=True,
            )
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "appliance",
                "agent",
                "serve",
                "--state-dir",
                str(self.state_dir),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--hypervisor",
                "test:///default",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        import socket

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited: {self.log_path.read_text()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("agent did not listen")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def start_manager(tmp: Path, db_url: str, name: str = "manager", **settings: object) -> RunningManager:
    state = tmp / name
    init_manager(state, db_url)
    mgr = RunningManager(state, db_url, dbserver.free_tcp_port(), tmp / f"{name}.log")
    cfg = state / "manager.toml"
    data = tomllib.loads(cfg.read_text())
    data.update({"public_url": f"https://127.0.0.1:{mgr.port}", "agent_timeout_seconds": 10.0, **settings})
    cfg.write_text(tomli_w.dumps(data))
    mgr.start()
    return mgr


@pytest.fixture
def trust_manager(tmp_path: Path, db_url: str) -> Iterator[RunningManager]:
    mgr = start_manager(tmp_path, db_url)
    yield mgr
    mgr.stop()


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Callable[[str], AgentProcess]]:
    started: list[AgentProcess] = []

    def make(name: str) -> AgentProcess:
        agent = AgentProcess(tmp_path / name, dbserver.free_tcp_port(), tmp_path / f"{name}.log")
        agent.start()
        started.append(agent)
        return agent

    yield make
    for agent in started:
        agent.stop()


@pytest.fixture
def second_db_url(mariadb: dbserver.MariaDBInstance) -> Iterator[str]:
    """A database for a second manager."""
    dbserver.create_database(mariadb, "second_manager", user="second", password="second-pw")
    yield mariadb.url("second", "second-pw", "second_manager")
    dbserver.drop_database(mariadb, "second_manager")
