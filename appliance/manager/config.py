"""The manager's state directory and its configuration file, ``manager.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import tomli_w

from appliance.errors import ConfigError
from appliance.manager.dburl import DatabaseURL, parse_db_url
from appliance.pki import write_private

CONFIG_NAME = "manager.toml"
DEFAULT_PORT = 7002


@dataclass(frozen=True)
class ManagerConfig:
    """Every key of manager.toml (documented in docs/manager.md)."""

    manager_uuid: str
    db_url: str
    listen: str = f"0.0.0.0:{DEFAULT_PORT}"
    job_workers: int = 4
    max_body_bytes: int = 1_048_576
    ingest_max_body_bytes: int = 16_777_216
    session_ttl_minutes: int = 480
    db_pool_size: int = 16
    housekeeping_seconds: float = 60.0
    public_url: str = (
        ""  # how agents reach this manager, e.g. https://manager.example:7002 (default: the host name)
    )
    leaf_lifetime_days: float = 398.0
    agent_timeout_seconds: float = 30.0
    reconcile_seconds: float = 60.0

    @property
    def database(self) -> DatabaseURL:
        return parse_db_url(self.db_url)


@dataclass(frozen=True)
class StatePaths:
    """Files under the manager's state directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def ca_cert(self) -> Path:
        return self.tls_dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.tls_dir / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.tls_dir / "manager.crt"

    @property
    def server_key(self) -> Path:
        return self.tls_dir / "manager.key"

    @property
    def client_cert(self) -> Path:
        return self.tls_dir / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.tls_dir / "client.key"

    @property
    def companion_cert(self) -> Path:
        return self.tls_dir / "companion.crt"

    @property
    def companion_key(self) -> Path:
        return self.tls_dir / "companion.key"

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    @property
    def lock(self) -> Path:
        return self.root / "manager.lock"


def parse_listen(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST`` or ``[V6]:PORT`` into (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ConfigError(f"bad listen address {text!r}: port is not a number", "use HOST:PORT") from None
    if not 0 < port < 65536 or not host:
        raise ConfigError(f"bad listen address {text!r}", "use HOST:PORT, e.g. 0.0.0.0:7002")
    return host, port


def save_config(paths: StatePaths, cfg: ManagerConfig) -> None:
    # The file holds the database password: 0600.
    write_private(paths.config, tomli_w.dumps(asdict(cfg)).encode())


def load_config(paths: StatePaths) -> ManagerConfig:
    if not paths.config.is_file():
        raise ConfigError(
            f"{paths.config} does not exist: {paths.root} is not an initialised manager state directory",
            "run `appliance manager init --state-dir DIR --db-url URL --admin-password-file FILE` first",
        )
    try:
        data = tomllib.loads(paths.config.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{paths.config}: {err}", "fix the TOML syntax") from None
    known = {f.name for f in fields(ManagerConfig)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(
            f"{paths.config}: unknown keys {', '.join(sorted(unknown))}",
            f"known keys: {', '.join(sorted(known))}",
        )
    try:
        cfg = ManagerConfig(**data)
    except TypeError as err:
        raise ConfigError(f"{paths.config}: {err}", "manager_uuid and db_url are required") from None
    cfg.database  # noqa: B018 - validates db_url
    parse_listen(cfg.listen)
    return cfg
