"""A private MariaDB server in a directory of its own: for tests, labs and `appliance manager up`.

The manager appliance runs Debian's MariaDB as a system service; this module runs the same
`mariadbd` binary unprivileged-style in a data directory we own, on its own socket and port.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import mysql.connector

from appliance.errors import DatabaseError, ExternalCommandError

IDENTIFIER = re.compile(r"[A-Za-z0-9_]{1,64}")


def _find_binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ExternalCommandError(
        f"{name} was not found",
        "install Debian's MariaDB server: apt-get install mariadb-server mariadb-client "
        "(tools/setup.sh does this)",
    )


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class MariaDBInstance:
    """Where a private server lives and how to reach it."""

    basedir: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def datadir(self) -> Path:
        return self.basedir / "data"

    @property
    def socket_path(self) -> Path:
        return self.basedir / "mysqld.sock"

    @property
    def pid_file(self) -> Path:
        return self.basedir / "mysqld.pid"

    @property
    def log_file(self) -> Path:
        return self.basedir / "mysqld.log"

    def url(self, user: str, password: str, database: str, *, via_socket: bool = False) -> str:
        """A manager DB URL (``mysql://USER:PASSWORD@HOST:PORT/DBNAME[?unix_socket=PATH]``)."""
        from urllib.parse import quote

        base = f"mysql://{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}/{database}"
        return f"{base}?unix_socket={self.socket_path}" if via_socket else base


def _install_datadir(inst: MariaDBInstance) -> None:
    inst.basedir.mkdir(parents=True, exist_ok=True)
    if (inst.datadir / "mysql").is_dir():
        return
    cmd = [
        _find_binary("mariadb-install-db"),
        "--no-defaults",
        f"--datadir={inst.datadir}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
    ]
    if os.geteuid() == 0:
        cmd.append("--user=root")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ExternalCommandError(
            f"mariadb-install-db failed for {inst.datadir}: {proc.stderr.strip()[-800:]}",
            "check that the directory is writable and mariadb-server is installed",
        )


def start(inst: MariaDBInstance, *, timeout: float = 60.0) -> subprocess.Popen[bytes]:
    """Initialise the data directory if needed, start `mariadbd` and wait until it answers."""
    _install_datadir(inst)
    cmd = [
        _find_binary("mariadbd"),
        "--no-defaults",
        f"--datadir={inst.datadir}",
        f"--socket={inst.socket_path}",
        f"--pid-file={inst.pid_file}",
        f"--port={inst.port}",
        f"--bind-address={inst.host}",
        f"--log-error={inst.log_file}",
        "--innodb-buffer-pool-size=256M",
        "--innodb-log-file-size=128M",
        "--innodb-flush-log-at-trx-commit=1",
        "--max-connections=400",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
        "--skip-name-resolve",
    ]
    if os.geteuid() == 0:
        cmd.append("--user=root")
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = inst.log_file.read_text(errors="replace")[-1500:] if inst.log_file.exists() else ""
            raise DatabaseError(
                f"mariadbd exited with status {proc.returncode} during start-up:\n{tail}",
                f"see {inst.log_file}; is port {inst.port} already in use?",
            )
        try:
            conn = mysql.connector.connect(unix_socket=str(inst.socket_path), user="root", password="")
            conn.close()
            return proc
        except mysql.connector.Error as err:
            last_error = err
            time.sleep(0.2)
    proc.terminate()
    raise DatabaseError(
        f"mariadbd did not answer within {timeout:.0f} s: {last_error}", f"see {inst.log_file}"
    )


def _check_identifier(name: str) -> str:
    if not IDENTIFIER.fullmatch(name):
        raise DatabaseError(f"invalid database name {name!r}", "use letters, digits and underscores only")
    return name


def create_database(inst: MariaDBInstance, database: str, user: str, password: str) -> None:
    """Create a database and a user that owns it (idempotent)."""
    _check_identifier(database)
    conn = mysql.connector.connect(unix_socket=str(inst.socket_path), user="root", password="")
    try:
        cur = conn.cursor()
        cur.execute(
            f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
        for host in ("localhost", "127.0.0.1"):
            cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, host, password))
            cur.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO %s@%s", (user, host))
        conn.commit()
    finally:
        conn.close()


def drop_database(inst: MariaDBInstance, database: str) -> None:
    _check_identifier(database)
    conn = mysql.connector.connect(unix_socket=str(inst.socket_path), user="root", password="")
    try:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
    finally:
        conn.close()


def stop(proc: subprocess.Popen[bytes], *, timeout: float = 30.0) -> None:
    """Shut the server down cleanly (SIGTERM), killing it if it does not stop in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
