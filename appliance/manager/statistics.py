"""Statistics: raw samples for a day, then 5-minute and hourly roll-ups (avg, min, max)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, select, text
from sqlalchemy.engine import Connection, Engine

from appliance.manager.events import insert_ignore
from appliance.manager.schema import stat_rollups, stat_samples


@dataclass(frozen=True)
class Retention:
    raw_seconds: int = 24 * 3600
    five_minute_seconds: int = 7 * 24 * 3600
    hourly_seconds: int = 90 * 24 * 3600


RESOLUTIONS = (0, 300, 3600)  # 0 = raw


def ingest(conn: Connection, samples: Iterable[Mapping[str, Any]]) -> int:
    """Insert samples; a sample already stored (same object, metric and time) is ignored."""
    rows = [
        {
            "object_type": s["object_type"],
            "object_id": s["object_id"],
            "metric": s["metric"],
            "ts": s["time"],
            "value": s["value"],
        }
        for s in samples
    ]
    if not rows:
        return 0
    return insert_ignore(conn, stat_samples, rows)


def choose_resolution(start: float, now: float, retention: Retention) -> int:
    """The finest resolution that still holds data as old as ``start``."""
    age = now - start
    if age <= retention.raw_seconds:
        return 0
    if age <= retention.five_minute_seconds:
        return 300
    return 3600


def series(
    conn: Connection,
    *,
    object_type: str,
    object_id: str,
    metric: str,
    start: float,
    end: float,
    resolution: int,
) -> list[dict[str, Any]]:
    if resolution == 0:
        rows = conn.execute(
            select(stat_samples.c.ts, stat_samples.c.value)
            .where(
                stat_samples.c.object_type == object_type,
                stat_samples.c.object_id == object_id,
                stat_samples.c.metric == metric,
                stat_samples.c.ts.between(start, end),
            )
            .order_by(stat_samples.c.ts)
        )
        return [{"time": ts, "value": v} for ts, v in rows]
    r = stat_rollups.c
    rows = conn.execute(
        select(r.ts, r.avg, r.min, r.max, r.samples)
        .where(
            r.resolution == resolution,
            r.object_type == object_type,
            r.object_id == object_id,
            r.metric == metric,
            r.ts.between(int(start) - resolution, end),
        )
        .order_by(r.ts)
    )
    return [
        {"time": float(x.ts), "value": x.avg, "min": x.min, "max": x.max, "samples": x.samples} for x in rows
    ]


_ROLLUP_FROM_RAW = text(
    """
    INSERT INTO stat_rollups (resolution, object_type, object_id, metric, ts, samples, avg, min, max)
    SELECT :res, object_type, object_id, metric, FLOOR(ts / :res) * :res AS bucket,
           COUNT(*), AVG(value), MIN(value), MAX(value)
    FROM stat_samples WHERE ts < :cutoff
    GROUP BY object_type, object_id, metric, bucket
    ON DUPLICATE KEY UPDATE
      avg = (stat_rollups.avg * stat_rollups.samples + VALUES(avg) * VALUES(samples))
            / (stat_rollups.samples + VALUES(samples)),
      min = LEAST(stat_rollups.min, VALUES(min)),
      max = GREATEST(stat_rollups.max, VALUES(max)),
      samples = stat_rollups.samples + VALUES(samples)
    """
)

_ROLLUP_COARSER = text(
    """
    INSERT INTO stat_rollups (resolution, object_type, object_id, metric, ts, samples, avg, min, max)
    SELECT :res, object_type, object_id, metric, FLOOR(ts / :res) * :res AS bucket,
           SUM(samples), SUM(avg * samples) / SUM(samples), MIN(min), MAX(max)
    FROM stat_rollups WHERE resolution = :finer AND ts < :cutoff
    GROUP BY object_type, object_id, metric, bucket
    ON DUPLICATE KEY UPDATE
      avg = (stat_rollups.avg * stat_rollups.samples + VALUES(avg) * VALUES(samples))
            / (stat_rollups.samples + VALUES(samples)),
      min = LEAST(stat_rollups.min, VALUES(min)),
      max = GREATEST(stat_rollups.max, VALUES(max)),
      samples = stat_rollups.samples + VALUES(samples)
    """
)


def downsample(
    engine: Engine, retention: Retention = Retention(), now: float | None = None
) -> dict[str, int]:
    """Fold raw samples past their retention into 5-minute buckets, those into hourly ones; drop the oldest.

    Cut-offs are aligned to the coarser bucket so a bucket is never folded twice.
    """
    now = time.time() if now is None else now
    raw_cutoff = (now - retention.raw_seconds) // 300 * 300
    five_cutoff = (now - retention.five_minute_seconds) // 3600 * 3600
    hourly_cutoff = now - retention.hourly_seconds
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        counts["raw_folded"] = conn.execute(_ROLLUP_FROM_RAW, {"res": 300, "cutoff": raw_cutoff}).rowcount
        conn.execute(delete(stat_samples).where(stat_samples.c.ts < raw_cutoff))
        counts["five_minute_folded"] = conn.execute(
            _ROLLUP_COARSER, {"res": 3600, "finer": 300, "cutoff": five_cutoff}
        ).rowcount
        conn.execute(
            delete(stat_rollups).where(
                and_(stat_rollups.c.resolution == 300, stat_rollups.c.ts < five_cutoff)
            )
        )
        counts["hourly_dropped"] = conn.execute(
            delete(stat_rollups).where(
                and_(stat_rollups.c.resolution == 3600, stat_rollups.c.ts < hourly_cutoff)
            )
        ).rowcount
    return counts
