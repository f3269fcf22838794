"""Shared fixtures: a private MariaDB server for the whole test session."""

from __future__ import annotations

import itertools
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from appliance.manager import dbserver

_db_counter = itertools.count(1)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dbserver.MariaDBInstance]:
    """A private `mariadbd` in a temp dir on its own socket and port, stopped after the session."""
    inst = dbserver.MariaDBInstance(basedir=tmp_path_factory.mktemp("mariadb"), port=dbserver.free_tcp_port())
    proc = dbserver.start(inst)
    try:
        yield inst
    finally:
        dbserver.stop(proc)


@pytest.fixture
def db_url(mariadb: dbserver.MariaDBInstance) -> Iterator[str]:
    """A fresh, empty database (and its own user) on the session's server; dropped afterwards."""
    name = f"t{next(_db_counter)}"
    dbserver.create_database(mariadb, name, user=f"u_{name}", password=f"pw-{name}")
    yield mariadb.url(f"u_{name}", f"pw-{name}", name)
    dbserver.drop_database(mariadb, name)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


# --- a real manager: `appliance manager serve` in its own process, real HTTPS, real MariaDB ---

ADMIN_PASSWORD = "admin-pw-1234"


@dataclass
class RunningManager:
    state_dir: Path
    db_url: str
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    # the SSH CLI companion would take port 10000: tests that want it start their own
    extra_args: tuple[str, ...] = ("--cli-listen", "off")

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}/api/v1"

    @property
    def ca(self) -> Path:
        return self.state_dir / "tls" / "ca.crt"

    def client(self, user: str = "admin", password: str = ADMIN_PASSWORD, **kwargs: object) -> httpx.Client:
        auth = (user, password) if user else None
        return httpx.Client(base_url=self.base, verify=self.ssl_context(), auth=auth, timeout=30, **kwargs)  # type: ignore[arg-type]

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "appliance",
                "manager",
                "serve",
                "--state-dir",
                str(self.state_dir),
                "--listen",
                f"127.0.0.1:{self.port}",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"manager exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/health", verify=self.ssl_context(), timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"manager did not answer: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def init_manager(state_dir: Path, db_url: str) -> None:
    pw = state_dir.parent / f"{state_dir.name}-admin-password"
    pw.write_text(ADMIN_PASSWORD + "\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance",
            "manager",
            "init",
            "--state-dir",
            str(state_dir),
            "--db-url",
            db_url,
            "--admin-password-file",
            str(pw),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def _make_manager(tmp: Path, db_url: str) -> RunningManager:
    state = tmp / "manager"
    init_manager(state, db_url)
    mgr = RunningManager(state, db_url, dbserver.free_tcp_port(), tmp / "manager.log")
    mgr.start()
    return mgr


@pytest.fixture(scope="session")
def shared_db_url(mariadb: dbserver.MariaDBInstance) -> str:
    dbserver.create_database(mariadb, "shared_manager", user="shared", password="shared-pw")
    return mariadb.url("shared", "shared-pw", "shared_manager")


@pytest.fixture(scope="session")
def manager(tmp_path_factory: pytest.TempPathFactory, shared_db_url: str) -> Iterator[RunningManager]:
    """One manager for the session's API tests (tests must not depend on a clean database)."""
    mgr = _make_manager(tmp_path_factory.mktemp("shared-manager"), shared_db_url)
    yield mgr
    mgr.stop()


@pytest.fixture
def fresh_manager(tmp_path: Path, db_url: str) -> Iterator[RunningManager]:
    """A manager of its own on an empty database, for tests that restart it or count things."""
    mgr = _make_manager(tmp_path, db_url)
    yield mgr
    mgr.stop()


@pytest.fixture
def admin(manager: RunningManager) -> Iterator[httpx.Client]:
    with manager.client() as c:
        yield c
