"""A real manager with the CLI companion on free loopback ports, and an OpenSSH client to reach it."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from appliance.manager import dbserver
from tests.conftest import ADMIN_PASSWORD, RunningManager, init_manager


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class CliManager(RunningManager):
    """`appliance manager serve` with --cli-listen and --legacy-listen on loopback."""

    ssh_port: int = 0
    legacy_port: int = 0
    extra: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.extra_args = (
            "--cli-listen", f"127.0.0.1:{self.ssh_port}",
            "--legacy-listen", f"127.0.0.1:{self.legacy_port}",
            *self.extra,
        )  # fmt: skip
        super().start()
        wait_for_port(self.ssh_port)
        wait_for_port(self.legacy_port)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def cli_manager(tmp_path_factory: pytest.TempPathFactory, mariadb: dbserver.MariaDBInstance) -> Iterator[CliManager]:
    tmp = tmp_path_factory.mktemp("cli-manager")
    dbserver.create_database(mariadb, "cli_manager", user="cli", password="cli-pw")
    db_url = mariadb.url("cli", "cli-pw", "cli_manager")
    state = tmp / "manager"
    init_manager(state, db_url)
    mgr = CliManager(
        state,
        db_url,
        dbserver.free_tcp_port(),
        tmp / "manager.log",
        ssh_port=dbserver.free_tcp_port(),
        legacy_port=dbserver.free_tcp_port(),
    )
    mgr.start()
    yield mgr
    mgr.stop()


@pytest.fixture
def api(cli_manager: CliManager) -> Iterator[httpx.Client]:
    with cli_manager.client() as c:
        yield c


@dataclass
class Ssh:
    """OpenSSH's `ssh` against the CLI: passwords through SSH_ASKPASS, keys with -i."""

    port: int
    home: Path  # known_hosts and askpass scripts live here

    @property
    def known_hosts(self) -> Path:
        return self.home / "known_hosts"

    def argv(
        self,
        user: str,
        *,
        key: Path | None = None,
        source: str | None = None,
        tty: bool = False,
        strict: str = "accept-new",
        log_level: str = "ERROR",
    ) -> list[str]:
        argv = [
            "ssh", "-F", "/dev/null", "-p", str(self.port),
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", f"StrictHostKeyChecking={strict}",
            "-o", "NumberOfPasswordPrompts=1",
            "-o", "ConnectTimeout=10",
            "-o", f"LogLevel={log_level}",  # INFO shows the server's banner
        ]  # fmt: skip
        if key is not None:
            argv += ["-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "PreferredAuthentications=publickey"]
        else:
            argv += ["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password"]
        if source:
            argv += ["-b", source]
        argv.append("-tt" if tty else "-T")
        return [*argv, f"{user}@127.0.0.1"]

    def env(self, password: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SSH_")}
        if password is not None:
            script = self.home / f"askpass-{abs(hash(password))}"
            script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{password}'\n")
            script.chmod(0o700)
            env.update(SSH_ASKPASS=str(script), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
        return env

    def run(
        self,
        command: str,
        *,
        user: str = "admin",
        password: str | None = ADMIN_PASSWORD,
        key: Path | None = None,
        source: str | None = None,
        strict: str = "accept-new",
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        argv = self.argv(user, key=key, source=source, strict=strict)
        return subprocess.run(
            [*argv, command],
            env=self.env(None if key else password),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(scope="session")
def ssh(cli_manager: CliManager, tmp_path_factory: pytest.TempPathFactory) -> Ssh:
    return Ssh(cli_manager.ssh_port, tmp_path_factory.mktemp("ssh-client"))


@pytest.fixture(scope="session")
def user_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("keys")
    key = home / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tester@cli", "-f", str(key)], check=True
    )
    return key
