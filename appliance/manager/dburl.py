"""The manager's database URL: ``mysql://USER:PASSWORD@HOST:PORT/DBNAME[?unix_socket=PATH]``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy.engine import URL

from appliance.errors import ConfigError

_DBNAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_EXAMPLE = "mysql://USER:PASSWORD@HOST:PORT/DBNAME or mysql://USER:PASSWORD@localhost/DBNAME?unix_socket=PATH"


@dataclass(frozen=True)
class DatabaseURL:
    user: str
    password: str
    host: str
    port: int
    database: str
    unix_socket: str | None = None

    def sqlalchemy_url(self) -> URL:
        query = {"unix_socket": self.unix_socket} if self.unix_socket else {}
        return URL.create(
            "mysql+mysqlconnector",
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=self.database,
            query=query,
        )

    def client_options(self) -> list[str]:
        """Connection options for MariaDB's command-line tools (the password goes in a defaults file)."""
        if self.unix_socket:
            return [f"--socket={self.unix_socket}", f"--user={self.user}"]
        return [f"--host={self.host}", f"--port={self.port}", "--protocol=TCP", f"--user={self.user}"]

    def redacted(self) -> str:
        tail = f"?unix_socket={self.unix_socket}" if self.unix_socket else ""
        return f"mysql://{self.user}:***@{self.host}:{self.port}/{self.database}{tail}"


def parse_db_url(text: str) -> DatabaseURL:
    """Parse and validate a manager DB URL; errors name the part that is wrong."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("mysql", "mariadb"):
        raise ConfigError(
            f"database URL must start with mysql://, got {parts.scheme or 'no scheme'!r}", _EXAMPLE
        )
    if not parts.username:
        raise ConfigError("database URL has no user name", _EXAMPLE)
    database = parts.path.lstrip("/")
    if not _DBNAME.fullmatch(database):
        raise ConfigError(
            f"database URL names no valid database ({database!r})",
            "give the database name after the host, letters, digits and _ only: " + _EXAMPLE,
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"unix_socket"}
    if unknown:
        raise ConfigError(f"database URL has unknown options: {', '.join(sorted(unknown))}", _EXAMPLE)
    unix_socket = query["unix_socket"][0] if "unix_socket" in query else None
    try:
        port = parts.port or 3306
    except ValueError as err:
        raise ConfigError(f"database URL has a bad port: {err}", _EXAMPLE) from None
    return DatabaseURL(
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        host=parts.hostname or "localhost",
        port=port,
        database=database,
        unix_socket=unix_socket or None,
    )
