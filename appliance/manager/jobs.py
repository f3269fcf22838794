"""Jobs: every change is queued as a job row and carried out by a worker pool inside the manager.

A job runs at most once. Jobs on the same object run one at a time, in submission order. A job that
was running when the manager stopped is marked failed at the next start, with the reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine, RowMapping

from appliance.manager import events
from appliance.manager.problems import ManagerProblem
from appliance.manager.schema import jobs
from appliance.manager.timeutil import iso, utcnow

log = logging.getLogger(__name__)

STATES = ("queued", "running", "succeeded", "failed", "aborted")
FINISHED = frozenset({"succeeded", "failed", "aborted"})


class JobAborted(Exception):
    pass


@dataclass
class JobContext:
    engine: Engine
    job_id: int
    kind: str
    object_type: str | None
    object_id: str | None
    request: dict[str, Any]
    created_by: str
    services: Any = None  # the ManagerRuntime, for handlers that need paths or config

    def progress(self, percent: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs).where(jobs.c.id == self.job_id).values(progress=max(0, min(100, percent)))
            )
        self.check_abort()

    def check_abort(self) -> None:
        with self.engine.connect() as conn:
            if conn.execute(select(jobs.c.abort_requested).where(jobs.c.id == self.job_id)).scalar():
                raise JobAborted()

    def event(self, conn: Connection, type: str, message: str, severity: str = "info") -> None:
        events.record(
            conn,
            type=type,
            message=message,
            severity=severity,
            object_type=self.object_type,
            object_id=self.object_id,
            job_id=self.job_id,
        )


Handler = Callable[[JobContext], dict[str, Any] | None]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def submit(
    conn: Connection,
    *,
    kind: str,
    summary: str,
    request: dict[str, Any],
    created_by: str,
    object_type: str | None = None,
    object_id: str | None = None,
) -> int:
    """Queue a job inside the caller's transaction; the runner picks it up after commit."""
    if kind not in HANDLERS:
        raise KeyError(f"no handler for job kind {kind!r}")
    result = conn.execute(
        insert(jobs).values(
            kind=kind,
            summary=summary[:255],
            object_type=object_type,
            object_id=object_id,
            state="queued",
            progress=0,
            request=request,
            abort_requested=False,
            created_by=created_by,
            created_at=utcnow(),
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def to_json(row: RowMapping) -> dict[str, Any]:
    error = None
    if row["error_code"]:
        error = {"code": row["error_code"], "message": row["error_message"]}
    return {
        "id": row["id"],
        "kind": row["kind"],
        "summary": row["summary"],
        "object_type": row["object_type"],
        "object_id": row["object_id"],
        "state": row["state"],
        "progress": row["progress"],
        "result": row["result"],
        "error": error,
        "abort_requested": bool(row["abort_requested"]),
        "created_by": row["created_by"],
        "created_at": iso(row["created_at"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
    }


def get(conn: Connection, job_id: int) -> RowMapping | None:
    return conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()


def request_abort(conn: Connection, job_id: int) -> None:
    """Abort a queued job at once; ask a running one to stop at its next check."""
    now = utcnow()
    conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.state == "queued")
        .values(
            state="aborted", finished_at=now, error_code="aborted", error_message="aborted before it started"
        )
    )
    conn.execute(
        update(jobs).where(jobs.c.id == job_id, jobs.c.state == "running").values(abort_requested=True)
    )


def recover_after_restart(engine: Engine) -> int:
    """Mark jobs left running by a previous manager process as failed; returns how many."""
    with engine.begin() as conn:
        stale = conn.execute(
            select(jobs.c.id, jobs.c.object_type, jobs.c.object_id).where(jobs.c.state == "running")
        )
        rows = list(stale)
        for job_id, object_type, object_id in rows:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    state="failed",
                    finished_at=utcnow(),
                    error_code="manager_restarted",
                    error_message="the manager stopped while this job was running (found at restart); check the object and retry",
                )
            )
            events.record(
                conn,
                type="job.failed",
                severity="warning",
                message=f"job {job_id} failed: the manager restarted while it was running",
                object_type=object_type,
                object_id=object_id,
                job_id=job_id,
            )
    return len(rows)


class JobRunner:
    """Dispatches queued jobs to a thread pool; one job per object at a time."""

    def __init__(self, engine: Engine, bell: events.EventBell, workers: int = 4, poll_seconds: float = 1.0):
        self.engine = engine
        self.bell = bell
        self.workers = workers
        self.poll_seconds = poll_seconds
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._busy: set[tuple[str | None, str | None]] = set()
        self._running: set[int] = set()
        self._lock = threading.Lock()
        self._finished = threading.Condition()
        self.services: Any = None
        self._thread = threading.Thread(target=self._dispatch_loop, name="job-dispatcher", daemon=True)

    def start(self) -> None:
        recover_after_restart(self.engine)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=False)

    def notify(self) -> None:
        self._wake.set()

    def wait_finished(self, job_id: int, timeout: float) -> None:
        """Block until the job is finished or the timeout passes (the caller re-reads the row)."""
        with self._finished:
            self._finished.wait_for(lambda: self._is_finished(job_id), timeout=timeout)

    def _is_finished(self, job_id: int) -> bool:
        with self.engine.connect() as conn:
            state = conn.execute(select(jobs.c.state).where(jobs.c.id == job_id)).scalar()
        return state is None or state in FINISHED

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self._dispatch_ready()
            except Exception:  # keep dispatching; the DB may be back on the next round
                log.exception("job dispatch failed")

    def _dispatch_ready(self) -> None:
        with self.engine.connect() as conn:
            queued = list(
                conn.execute(
                    select(jobs.c.id, jobs.c.object_type, jobs.c.object_id)
                    .where(jobs.c.state == "queued")
                    .order_by(jobs.c.id)
                    .limit(500)
                )
            )
        blocked: set[tuple[str | None, str | None]] = set()
        for job_id, object_type, object_id in queued:
            key = (object_type, object_id) if object_id else (None, f"job-{job_id}")
            with self._lock:
                if len(self._running) >= self.workers:
                    return
                if job_id in self._running or key in self._busy or key in blocked:
                    blocked.add(key)
                    continue
                self._busy.add(key)
                self._running.add(job_id)
            self._pool.submit(self._run, job_id, key)

    def _claim(self, job_id: int) -> RowMapping | None:
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == "queued")
                .values(state="running", started_at=utcnow())
            ).rowcount
            if not claimed:
                return None
            row = get(conn, job_id)
            assert row is not None
            events.record(
                conn,
                type="job.started",
                message=f"job {job_id} started: {row['summary']}",
                object_type=row["object_type"],
                object_id=row["object_id"],
                job_id=job_id,
            )
            return row

    def _run(self, job_id: int, key: tuple[str | None, str | None]) -> None:
        try:
            row = self._claim(job_id)
            if row is not None:
                self._execute(row)
        except Exception:
            log.exception("job %s: unexpected failure in the runner", job_id)
        finally:
            with self._lock:
                self._busy.discard(key)
                self._running.discard(job_id)
            with self._finished:
                self._finished.notify_all()
            self.bell.ring()
            self._wake.set()

    def _execute(self, row: RowMapping) -> None:
        ctx = JobContext(
            engine=self.engine,
            job_id=row["id"],
            kind=row["kind"],
            object_type=row["object_type"],
            object_id=row["object_id"],
            request=dict(row["request"] or {}),
            created_by=row["created_by"],
            services=self.services,
        )
        try:
            result = HANDLERS[row["kind"]](ctx) or {}
        except JobAborted:
            self._finish(ctx, "aborted", None, "aborted", "aborted at the user's request")
        except ManagerProblem as err:
            self._finish(ctx, "failed", None, err.code, str(err))
        except Exception as err:
            log.exception("job %s (%s) crashed", ctx.job_id, ctx.kind)
            self._finish(ctx, "failed", None, "internal_error", f"{type(err).__name__}: {err}")
        else:
            self._finish(ctx, "succeeded", result, None, None)

    def _finish(
        self,
        ctx: JobContext,
        state: str,
        result: dict[str, Any] | None,
        code: str | None,
        message: str | None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == ctx.job_id)
                .values(
                    state=state,
                    progress=100 if state == "succeeded" else jobs.c.progress,
                    result=result,
                    error_code=code,
                    error_message=message,
                    finished_at=utcnow(),
                )
            )
            text = f"job {ctx.job_id} {state}" + (f": {message}" if message else "")
            ctx.event(conn, f"job.{state}", text, "info" if state == "succeeded" else "error")
