"""The agent's local state: one SQLite file (WAL, synchronous=FULL) replacing Oracle VM's
Berkeley DB. Holds identity and settings, ownership, VM definitions and the outbox of events and
statistics samples waiting to be pushed. Every write is one transaction; a crash keeps either the
old or the new state."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import DatabaseError

SCHEMA_VERSION = 1

_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE ownership (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    manager_uuid TEXT NOT NULL,
    ca_pem TEXT NOT NULL,
    event_url TEXT NOT NULL,
    statistics_url TEXT NOT NULL,
    client_cert_path TEXT,
    client_key_path TEXT,
    taken_at REAL NOT NULL
);
CREATE TABLE vms (
    uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    spec_json TEXT NOT NULL,
    last_state TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('event', 'sample')),
    item_id TEXT NOT NULL UNIQUE,
    body_json TEXT NOT NULL,
    created_at REAL NOT NULL,
    sticky INTEGER NOT NULL DEFAULT 0  -- never dropped on overflow (the overflow notice itself)
);
CREATE INDEX outbox_kind_seq ON outbox (kind, seq);
"""

EVENT = "event"
SAMPLE = "sample"


@dataclass(frozen=True)
class Ownership:
    manager_uuid: str
    ca_pem: str
    event_url: str
    statistics_url: str
    client_cert_path: str | None
    client_key_path: str | None
    taken_at: float


@dataclass(frozen=True)
class VmRecord:
    uuid: str
    name: str
    spec: dict[str, Any]
    last_state: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class OutboxItem:
    seq: int
    item_id: str
    body: dict[str, Any]


def sample_item_id(sample: dict[str, Any]) -> str:
    """Samples are idempotent by (object_type, object_id, metric, time), so that is their id."""
    return f"{sample['object_type']}:{sample['object_id']}:{sample['metric']}:{sample['time']!r}"


class Store:
    """Thread-safe: one connection behind a lock (writes are serialised by SQLite anyway)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as err:
            raise DatabaseError(
                f"cannot open the agent state database {path}: {err}",
                "check the --state-dir path and its permissions; restore agent.db from a backup if it is corrupt",
            ) from err

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise DatabaseError(
                f"agent.db has schema version {version}, newer than this agent ({SCHEMA_VERSION})",
                "run the newer agent version, or restore the state directory that matches this one",
            )
        if version < 1:
            with self.transaction() as db:
                for statement in _SCHEMA_V1.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # -- settings ---------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def ensure_server_uuid(self) -> str:
        with self.transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'server_uuid'").fetchone()
            if row:
                return str(row[0])
            new = str(uuid.uuid4())
            db.execute("INSERT INTO meta (key, value) VALUES ('server_uuid', ?)", (new,))
            return new

    # -- ownership --------------------------------------------------------------------------------
    def get_ownership(self) -> Ownership | None:
        rows = self._query(
            "SELECT manager_uuid, ca_pem, event_url, statistics_url, client_cert_path, client_key_path,"
            " taken_at FROM ownership WHERE id = 1"
        )
        return Ownership(*rows[0]) if rows else None

    def set_ownership(self, own: Ownership) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO ownership (id, manager_uuid, ca_pem, event_url, statistics_url,"
                " client_cert_path, client_key_path, taken_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                (
                    own.manager_uuid,
                    own.ca_pem,
                    own.event_url,
                    own.statistics_url,
                    own.client_cert_path,
                    own.client_key_path,
                    own.taken_at,
                ),
            )

    def clear_ownership(self) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM ownership")
            # Samples were meant for that manager only; events stay for the next owner.
            db.execute("DELETE FROM outbox WHERE kind = 'sample'")

    # -- VM definitions ---------------------------------------------------------------------------
    def put_vm(self, vm_uuid: str, name: str, spec: dict[str, Any], state: str) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO vms (uuid, name, spec_json, last_state, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (uuid) DO UPDATE SET name = excluded.name, spec_json = excluded.spec_json,"
                " last_state = excluded.last_state, updated_at = excluded.updated_at",
                (vm_uuid, name, json.dumps(spec, sort_keys=True), state, now, now),
            )

    def set_vm_state(self, vm_uuid: str, state: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE vms SET last_state = ?, updated_at = ? WHERE uuid = ?", (state, time.time(), vm_uuid)
            )

    def get_vm(self, vm_uuid: str) -> VmRecord | None:
        rows = self._query(
            "SELECT uuid, name, spec_json, last_state, created_at, updated_at FROM vms WHERE uuid = ?",
            (vm_uuid,),
        )
        return self._vm(rows[0]) if rows else None

    def find_vm_by_name(self, name: str) -> VmRecord | None:
        rows = self._query(
            "SELECT uuid, name, spec_json, last_state, created_at, updated_at FROM vms WHERE name = ?",
            (name,),
        )
        return self._vm(rows[0]) if rows else None

    def list_vms(self) -> list[VmRecord]:
        rows = self._query(
            "SELECT uuid, name, spec_json, last_state, created_at, updated_at FROM vms ORDER BY name"
        )
        return [self._vm(r) for r in rows]

    def delete_vm(self, vm_uuid: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM vms WHERE uuid = ?", (vm_uuid,))

    @staticmethod
    def _vm(row: tuple[Any, ...]) -> VmRecord:
        return VmRecord(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5])

    # -- outbox -----------------------------------------------------------------------------------
    def enqueue(
        self,
        kind: str,
        items: list[tuple[str, dict[str, Any]]],
        cap: int,
        vm_state: tuple[str, str] | None = None,
        sticky: bool = False,
    ) -> int:
        """Append (item_id, body) pairs in order; an id already queued is skipped. When the queue of
        ``kind`` would exceed ``cap``, its oldest items are dropped; returns how many were dropped.
        ``vm_state`` (uuid, state) is recorded in the same transaction as the items; ``sticky``
        items are never dropped."""
        if not items:
            return 0
        now = time.time()
        with self.transaction() as db:
            if vm_state is not None:
                db.execute(
                    "UPDATE vms SET last_state = ?, updated_at = ? WHERE uuid = ?",
                    (vm_state[1], now, vm_state[0]),
                )
            db.executemany(
                "INSERT OR IGNORE INTO outbox (kind, item_id, body_json, created_at, sticky)"
                " VALUES (?, ?, ?, ?, ?)",
                [(kind, item_id, json.dumps(body), now, int(sticky)) for item_id, body in items],
            )
            count = db.execute("SELECT COUNT(*) FROM outbox WHERE kind = ?", (kind,)).fetchone()[0]
            excess = max(0, count - cap)
            if excess:
                db.execute(
                    "DELETE FROM outbox WHERE seq IN"
                    " (SELECT seq FROM outbox WHERE kind = ? AND sticky = 0 ORDER BY seq LIMIT ?)",
                    (kind, excess),
                )
            return int(excess)

    def peek(self, kind: str, limit: int) -> list[OutboxItem]:
        rows = self._query(
            "SELECT seq, item_id, body_json FROM outbox WHERE kind = ? ORDER BY seq LIMIT ?", (kind, limit)
        )
        return [OutboxItem(r[0], r[1], json.loads(r[2])) for r in rows]

    def ack(self, seqs: list[int]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def count(self, kind: str) -> int:
        return int(self._query("SELECT COUNT(*) FROM outbox WHERE kind = ?", (kind,))[0][0])
