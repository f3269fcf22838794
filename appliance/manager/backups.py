"""Hot, consistent database backups with mariadb-dump, each verified and checksummed; restore.

A backup is a directory ``backups/ID/`` holding ``dump.sql.gz`` and ``meta.json``; meta.json is
written last, so a directory without it is an unfinished backup and is never listed or restored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.engine import Connection

from appliance import __version__
from appliance.errors import ExternalCommandError
from appliance.manager.dburl import DatabaseURL
from appliance.manager.problems import Conflict, Invalid, NotFound
from appliance.manager.schema import settings

BACKUP_ID = re.compile(r"^\d{8}T\d{6}Z-(auto|manual)-[0-9a-f]{6}$")
DUMP_NAME = "dump.sql.gz"
META_NAME = "meta.json"
DUMP_TRAILER = b"-- Dump completed"
CONFIG_KEY = "backup_config"
DEFAULT_CONFIG = {"interval_minutes": 1440, "keep": 21}


@dataclass(frozen=True)
class BackupInfo:
    id: str
    kind: str  # auto | manual
    created_at: str
    size_bytes: int
    sha256: str
    database: str
    schema_revision: str | None
    manager_version: str


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise ExternalCommandError(
            f"{name} was not found", "install mariadb-client (tools/setup.sh does this)"
        )
    return path


@contextlib.contextmanager
def _defaults_file(url: DatabaseURL) -> Iterator[str]:
    """The password goes to the client tools in a 0600 file, never on a command line."""
    fd, path = tempfile.mkstemp(prefix="appliance-db-", suffix=".cnf")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(f"[client]\npassword={json.dumps(url.password)}\n")
        yield path
    finally:
        os.unlink(path)


def new_backup_id(kind: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S}Z-{kind}-{secrets.token_hex(3)}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_dump(path: Path) -> None:
    """The gzip stream is intact and mariadb-dump finished writing (its trailer is there)."""
    tail = b""
    try:
        with gzip.open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                tail = (tail + chunk)[-4096:]
    except (OSError, EOFError) as err:
        raise Invalid(f"backup {path} is damaged: {err}", "take a new backup") from None
    if DUMP_TRAILER not in tail:
        raise Invalid(f"backup {path} is incomplete (no '-- Dump completed' trailer)", "take a new backup")


def create(root: Path, url: DatabaseURL, kind: str, schema_revision: str | None) -> BackupInfo:
    backup_id = new_backup_id(kind)
    target = root / backup_id
    target.mkdir(parents=True, exist_ok=False)
    dump = target / DUMP_NAME
    try:
        with _defaults_file(url) as cnf:
            cmd = [
                _tool("mariadb-dump"),
                f"--defaults-extra-file={cnf}",
                *url.client_options(),
                "--single-transaction",
                "--quick",
                "--routines",
                "--triggers",
                "--hex-blob",
                "--add-drop-table",
                url.database,
            ]
            with (
                dump.open("wb") as raw,
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz,
            ):
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                assert proc.stdout is not None
                for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):  # type: ignore[union-attr]
                    gz.write(chunk)
                stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                if proc.wait() != 0:
                    raise ExternalCommandError(
                        f"mariadb-dump failed: {stderr.strip()[-800:]}", "check the database"
                    )
        verify_dump(dump)
        info = BackupInfo(
            id=backup_id,
            kind=kind,
            created_at=dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
            size_bytes=dump.stat().st_size,
            sha256=_sha256(dump),
            database=url.database,
            schema_revision=schema_revision,
            manager_version=__version__,
        )
        tmp = target / (META_NAME + ".tmp")
        tmp.write_text(json.dumps(asdict(info), indent=2))
        os.replace(tmp, target / META_NAME)
        return info
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def _load(directory: Path) -> BackupInfo | None:
    meta = directory / META_NAME
    if not meta.is_file():
        return None
    try:
        return BackupInfo(**json.loads(meta.read_text()))
    except (ValueError, TypeError):
        return None


def list_backups(root: Path) -> list[BackupInfo]:
    if not root.is_dir():
        return []
    found = (_load(d) for d in root.iterdir() if d.is_dir() and BACKUP_ID.match(d.name))
    return sorted((b for b in found if b), key=lambda b: b.id, reverse=True)


def get(root: Path, backup_id: str) -> BackupInfo:
    info = _load(root / backup_id) if BACKUP_ID.match(backup_id) else None
    if info is None:
        raise NotFound(f"no backup with id {backup_id!r}", "list them with `appliance manager backup list`")
    return info


def verify(root: Path, backup_id: str) -> BackupInfo:
    info = get(root, backup_id)
    dump = root / backup_id / DUMP_NAME
    actual = _sha256(dump)
    if actual != info.sha256:
        raise Invalid(
            f"backup {backup_id} fails its checksum ({actual} != {info.sha256})", "use another backup"
        )
    verify_dump(dump)
    return info


def remove(root: Path, backup_id: str) -> None:
    get(root, backup_id)
    shutil.rmtree(root / backup_id)


def prune(root: Path, keep: int) -> list[str]:
    """Keep the ``keep`` newest automatic backups; manual ones stay until deleted."""
    autos = [b for b in list_backups(root) if b.kind == "auto"]
    dropped = [b.id for b in autos[keep:]]
    for backup_id in dropped:
        shutil.rmtree(root / backup_id, ignore_errors=True)
    return dropped


def restore(root: Path, backup_id: str, url: DatabaseURL) -> BackupInfo:
    """Verify, then replace the database's contents with the backup's. The manager must be stopped."""
    info = verify(root, backup_id)
    if info.database != url.database:
        raise Conflict(
            f"backup {backup_id} is of database {info.database!r}, not {url.database!r}",
            "restore it into the database it was taken from",
        )
    with _defaults_file(url) as cnf:
        cmd = [_tool("mariadb"), f"--defaults-extra-file={cnf}", *url.client_options(), url.database]
        with gzip.open(root / backup_id / DUMP_NAME, "rb") as dump:
            proc = subprocess.run(cmd, input=dump.read(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise ExternalCommandError(
            f"restoring backup {backup_id} failed: {proc.stderr.decode(errors='replace').strip()[-800:]}",
            "the database may be partly restored: fix the cause and restore again",
        )
    return info


def read_config(conn: Connection) -> dict[str, int]:
    value = conn.execute(select(settings.c.value).where(settings.c.name == CONFIG_KEY)).scalar()
    return {**DEFAULT_CONFIG, **(value or {})}


def write_config(conn: Connection, config: dict[str, int]) -> None:
    stmt = mysql_insert(settings).values(name=CONFIG_KEY, value=config)
    conn.execute(stmt.on_duplicate_key_update(value=stmt.inserted.value))


def last_auto_backup_time(root: Path) -> dt.datetime | None:
    for info in list_backups(root):
        if info.kind == "auto":
            return dt.datetime.fromisoformat(info.created_at.replace("Z", "+00:00"))
    return None
