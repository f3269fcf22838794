"""`appliance manager init` and `upgrade`: schema, identity, first admin, CA and TLS certificate."""

from __future__ import annotations

import dataclasses
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.dialects.mysql import insert as mysql_insert

from appliance import pki
from appliance.errors import ConfigError, UsageError
from appliance.manager import migrate
from appliance.manager.config import ManagerConfig, StatePaths, load_config, save_config
from appliance.manager.database import check_connection, make_engine
from appliance.manager.dburl import DatabaseURL, parse_db_url
from appliance.manager.passwords import check_policy, hash_password
from appliance.manager.schema import settings, users
from appliance.manager.timeutil import utcnow
from appliance.manager.trust import renew_own_certificates


@dataclass(frozen=True)
class InitResult:
    manager_uuid: str
    ca_fingerprint: str
    schema_revision: str


def read_password_file(path: Path) -> str:
    try:
        text = path.read_text()
    except OSError as err:
        raise UsageError(
            f"cannot read the admin password file {path}: {err.strerror}", "give a readable file"
        ) from None
    password = text.rstrip("\r\n")
    check_policy(password)
    return password


def host_names() -> list[str]:
    names = {socket.gethostname(), socket.getfqdn(), "localhost", "127.0.0.1", "::1"}
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            names.add(str(info[4][0]))
    except OSError:
        pass
    return sorted(n for n in names if n)


def make_tls(paths: StatePaths, manager_uuid: str, extra_names: list[str]) -> str:
    """Create the CA (once) and the manager's TLS certificate; returns the CA fingerprint."""
    if paths.ca_cert.exists():
        ca = pki.load_pair(paths.ca_cert, paths.ca_key)
    else:
        ca = pki.create_ca(f"Appliance manager CA {manager_uuid}")
        pki.save_pair(ca, paths.ca_cert, paths.ca_key)
    renew_own_certificates(paths, manager_uuid, host_names() + extra_names, force=True)
    return pki.fingerprint(ca.cert)


def init(
    state_dir: Path,
    db_url: str,
    admin_password_file: Path,
    names: list[str] | None = None,
    keep_identity: bool = False,
    start_db: Path | None = None,
) -> InitResult:
    """Set up a manager; with ``keep_identity`` an existing state dir (UUID, CA) gets a new database.

    With ``start_db`` (installers) a private mariadbd runs on that datadir for the duration of init,
    as the `mysql` user with root on socket authentication like Debian's own; the database and user
    of ``db_url`` are created in it, and ``db_url`` is what the installed host will use at run time."""
    if start_db is not None:
        return _init_with_private_db(state_dir, db_url, admin_password_file, names, keep_identity, start_db)
    paths = StatePaths(state_dir)
    if paths.config.exists() and not keep_identity:
        raise ConfigError(
            f"{paths.root} is already initialised ({paths.config} exists)",
            "use another --state-dir, `appliance manager upgrade` to migrate an existing manager, or "
            "--keep-identity to set up a new, empty database for this manager (then refresh all servers)",
        )
    password = read_password_file(admin_password_file)  # validate every input before touching anything
    url = parse_db_url(db_url)
    engine = make_engine(url, pool_size=2)
    try:
        check_connection(engine, url)
        migrate.upgrade(engine)
        kept = load_config(paths).manager_uuid if keep_identity and paths.config.exists() else None
        with engine.begin() as conn:
            existing = (
                kept
                or conn.execute(select(settings.c.value).where(settings.c.name == "manager_uuid")).scalar()
            )
            manager_uuid = str(existing) if existing else str(uuid.uuid4())
            conn.execute(
                mysql_insert(settings).values(name="manager_uuid", value=manager_uuid).prefix_with("IGNORE")
            )
            if conn.execute(select(users.c.id).where(users.c.name == "admin")).scalar() is None:
                now = utcnow()
                conn.execute(
                    insert(users).values(
                        id=str(uuid.uuid4()),
                        name="admin",
                        role="admin",
                        password_hash=hash_password(password),
                        description="first administrator",
                        created_at=now,
                        updated_at=now,
                    )
                )
        fingerprint = make_tls(paths, manager_uuid, names or [])
        if kept:
            save_config(paths, dataclasses.replace(load_config(paths), db_url=db_url))
        else:
            save_config(paths, ManagerConfig(manager_uuid=manager_uuid, db_url=db_url))
        return InitResult(manager_uuid, fingerprint, migrate.head_revision())
    finally:
        engine.dispose()


def upgrade(state_dir: Path) -> tuple[str | None, str]:
    from appliance.manager.config import load_config

    cfg = load_config(StatePaths(state_dir))
    engine = make_engine(cfg.database, pool_size=1)
    try:
        check_connection(engine, cfg.database)
        return migrate.upgrade(engine)
    finally:
        engine.dispose()


def _init_with_private_db(
    state_dir: Path,
    db_url: str,
    admin_password_file: Path,
    names: list[str] | None,
    keep_identity: bool,
    datadir: Path,
) -> InitResult:
    import pwd
    import tempfile

    from appliance.manager import dbserver

    read_password_file(admin_password_file)
    url = parse_db_url(db_url)
    try:
        pwd.getpwnam("mysql")
        run_as: str | None = "mysql"
    except KeyError:
        run_as = None
    with tempfile.TemporaryDirectory(prefix="appliance-initdb-") as tmp:
        base = Path(tmp)
        if run_as:
            import shutil

            shutil.chown(base, run_as, run_as)
        datadir.mkdir(parents=True, exist_ok=True)
        if run_as:
            shutil.chown(datadir, run_as, run_as)
        inst = dbserver.MariaDBInstance(
            base, 0, data=datadir, run_as=run_as, networking=False, socket_auth=True
        )
        proc = dbserver.start(inst)
        try:
            dbserver.create_database(inst, url.database, url.user, url.password)
            private = dataclasses.replace(url, unix_socket=str(inst.socket_path))
            result = init(state_dir, _as_url(private), admin_password_file, names, keep_identity)
        finally:
            dbserver.stop(proc)
    # the host will reach the database through its own socket
    paths = StatePaths(state_dir)
    save_config(paths, dataclasses.replace(load_config(paths), db_url=db_url))
    return result


def _as_url(url: DatabaseURL) -> str:
    from urllib.parse import quote

    base = f"mysql://{quote(url.user, safe='')}:{quote(url.password, safe='')}@{url.host}:{url.port}/{url.database}"
    return f"{base}?unix_socket={url.unix_socket}" if url.unix_socket else base
