"""Events: every state change writes one; agents push theirs; clients page, stream and acknowledge them."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table, and_, func, insert, select
from sqlalchemy.engine import Connection, RowMapping

from appliance.manager.schema import events
from appliance.manager.timeutil import from_epoch, iso, utcnow

SEVERITIES = ("info", "warning", "error", "critical")
MANAGER_SOURCE = "manager"


class EventBell:
    """Wakes stream readers in this process when events are written."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    def ring(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self._generation != seen, timeout=timeout)
            return self._generation

    @property
    def generation(self) -> int:
        return self._generation


def record(
    conn: Connection,
    *,
    type: str,
    message: str,
    severity: str = "info",
    object_type: str | None = None,
    object_id: str | None = None,
    job_id: int | None = None,
) -> int:
    result = conn.execute(
        insert(events).values(
            time=utcnow(),
            severity=severity,
            type=type,
            object_type=object_type,
            object_id=object_id,
            message=message,
            job_id=job_id,
            source=MANAGER_SOURCE,
            acknowledged=False,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def ingest_from_agent(
    conn: Connection, server_id: str, batch: Iterable[Mapping[str, Any]]
) -> tuple[int, int]:
    """Store events an agent pushed; a replayed id is ignored. Returns (accepted, duplicates)."""
    rows = [
        {
            "time": from_epoch(item["time"]),
            "severity": item["severity"],
            "type": item["type"],
            "object_type": item["object_type"],
            "object_id": item["object_id"],
            "message": item["message"],
            "job_id": None,
            "source": server_id,
            "source_event_id": item["id"],
            "acknowledged": False,
        }
        for item in batch
    ]
    if not rows:
        return 0, 0
    accepted = insert_ignore(conn, events, rows)
    return accepted, len(rows) - accepted


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    """One multi-row INSERT IGNORE; returns how many rows were new.

    Run as driver SQL: through SQLAlchemy's compiled path mysql-connector reports no row count.
    """
    columns = list(rows[0])
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    sql = f"INSERT IGNORE INTO {table.name} ({', '.join(columns)}) VALUES " + ", ".join([one] * len(rows))
    params = tuple(row[c] for row in rows for c in columns)
    return max(int(conn.exec_driver_sql(sql, params).rowcount), 0)


def to_json(row: RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        "time": iso(row["time"]),
        "severity": row["severity"],
        "type": row["type"],
        "object_type": row["object_type"],
        "object_id": row["object_id"],
        "message": row["message"],
        "job_id": row["job_id"],
        "source": row["source"],
        "acknowledged": bool(row["acknowledged"]),
        "acknowledged_by": row["acknowledged_by"],
        "acknowledged_at": iso(row["acknowledged_at"]),
    }


def page(
    conn: Connection, *, since: int, limit: int, filters: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], int]:
    """Events with id > since in id order, and how many match the filters in all."""
    conds = [events.c[name] == value for name, value in filters.items() if value is not None]
    where = and_(events.c.id > since, *conds)
    rows = conn.execute(select(events).where(where).order_by(events.c.id).limit(limit)).mappings()
    total = conn.execute(select(func.count()).select_from(events).where(where)).scalar_one()
    return [to_json(r) for r in rows], int(total)


def latest_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one())


__all__ = ["SEVERITIES", "EventBell", "ingest_from_agent", "latest_id", "page", "record", "to_json"]
