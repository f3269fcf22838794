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
    data: Path | None = None  # the datadir, if not basedir/data (e.g. an installed host's /var/lib/mysql)
    run_as: str | None = None  # system user for mariadbd (default: root when we are root)
    networking: bool = True  # False: the socket only
    socket_auth: bool = (
        False  # root logs in by unix socket credentials, as Debian sets it up (installed hosts)
    )

    @property
    def datadir(self) -> Path:
        return self.data or self.basedir / "data"

    def user_option(self) -> list[str]:
        if self.run_as:
            return [f"--user={self.run_as}"]
        return ["--user=root"] if os.geteuid() == 0 else []

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
        f"--auth-root-authentication-method={'socket' if inst.socket_auth else 'normal'}",
        "--skip-test-db",
        *inst.user_option(),
    ]
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
        *(
            [f"--port={inst.port}", f"--bind-address={inst.host}"]
            if inst.networking
            else ["--skip-networking"]
        ),
        f"--log-error={inst.log_file}",
        "--innodb-buffer-pool-size=256M",
        "--innodb-log-file-size=128M",
        "--innodb-flush-log-at-trx-commit=1",
        "--max-connections=400",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
        "--skip-name-resolve",
        *inst.user_option(),
    ]
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
            _ping(inst)
            return proc
        except (mysql.connector.Error, OSError) as err:
            last_error = err
            time.sleep(0.2)
    proc.terminate()
    raise DatabaseError(
        f"mariadbd did not answer within {timeout:.0f} s: {last_error}", f"see {inst.log_file}"
    )


def _ping(inst: MariaDBInstance) -> None:
    if inst.socket_auth:  # the server answers its socket once it is ready for clients
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(inst.socket_path))
            if not sock.recv(4):
                raise OSError("mariadbd closed the connection")
        return
    mysql.connector.connect(unix_socket=str(inst.socket_path), user="root", password="").close()


def _check_identifier(name: str) -> str:
    if not IDENTIFIER.fullmatch(name):
        raise DatabaseError(f"invalid database name {name!r}", "use letters, digits and underscores only")
    return name


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_database(inst: MariaDBInstance, database: str, user: str, password: str) -> None:
    """Create a database and a user that owns it (idempotent)."""
    _check_identifier(database)
    if inst.socket_auth:  # only MariaDB's own client speaks unix_socket authentication
        statements = [
            f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        ]
        for host in ("localhost", "127.0.0.1"):
            account = f"{_sql_string(user)}@{_sql_string(host)}"
            statements += [
                f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {_sql_string(password)}",
                f"GRANT ALL PRIVILEGES ON `{database}`.* TO {account}",
            ]
        proc = subprocess.run(
            [_find_binary("mariadb"), "--no-defaults", f"--socket={inst.socket_path}", "-u", "root"],
            input=";\n".join(statements) + ";\n",
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise DatabaseError(
                f"creating database {database} failed: {proc.stderr.strip()[-500:]}", f"see {inst.log_file}"
            )
        return
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
