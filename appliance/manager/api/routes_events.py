"""/events: paged by id, streamed as Server-Sent Events, acknowledged; agents push theirs here."""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from appliance.manager import events, jobs
from appliance.manager.api.auth import Principal, require, require_agent
from appliance.manager.api.common import JOB_RESPONSES, Limit, Wait, runtime, submit_job
from appliance.manager.api.responses import JSON
from appliance.manager.models import AgentEvents
from appliance.manager.problems import Conflict, NotFound
from appliance.manager.runtime import ManagerRuntime
from appliance.manager.schema import events as events_table
from appliance.manager.servers import note_contact
from appliance.manager.timeutil import utcnow
from appliance.manager.vms import follow_agent_events

router = APIRouter(prefix="/events", tags=["events"])
Since = Annotated[int, Query(ge=0, le=2**62, description="only events with a larger id")]
EventId = Annotated[int, Path(ge=1, le=2**62)]
Severity = Annotated[str | None, Query(pattern="^(info|warning|error|critical)$")]


@router.get("", summary="Events in id order, after ?since=ID")
def list_events(
    request: Request,
    since: Since = 0,
    limit: Limit = 100,
    severity: Severity = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    acknowledged: bool | None = None,
    _: Principal = Depends(require("readonly")),
) -> JSON:
    filters = {"severity": severity, "object_id": object_id, "acknowledged": acknowledged}
    with runtime(request).reader.connect() as conn:
        items, total = events.page(conn, since=since, limit=limit, filters=filters)
    next_since = items[-1]["id"] if items else since
    return JSON({"items": items, "total": total, "limit": limit, "since": since, "next_since": next_since})


@router.get("/stream", summary="Live events as Server-Sent Events (text/event-stream)")
async def stream_events(
    request: Request,
    since: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
    _: Principal = Depends(require("readonly")),
) -> StreamingResponse:
    rt = runtime(request)
    start = since
    if start is None and last_event_id and last_event_id.isdigit():
        start = int(last_event_id)
    if start is None:
        start = await run_in_threadpool(lambda: _latest(rt))

    async def generate() -> AsyncIterator[bytes]:
        cursor, idle = start, 0.0
        yield b"retry: 2000\n\n"
        while not await request.is_disconnected():
            seen = rt.bell.generation
            batch = await run_in_threadpool(_read, rt, cursor)
            for item in batch:
                cursor = item["id"]
                yield b"id: %d\nevent: %s\ndata: %s\n\n" % (cursor, item["type"].encode(), orjson.dumps(item))
            if batch:
                idle = 0.0
                continue
            if idle >= 15:
                yield b": keep-alive\n\n"
                idle = 0.0
            # Wait on the bell without holding a worker thread (streams must not starve the API).
            for _ in range(10):
                await asyncio.sleep(0.1)
                if rt.bell.generation != seen:
                    break
            idle += 1.0

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(generate(), media_type="text/event-stream", headers=headers)


def _latest(rt: ManagerRuntime) -> int:
    with rt.reader.connect() as conn:
        return events.latest_id(conn)


def _read(rt: ManagerRuntime, cursor: int) -> list[dict]:
    with rt.reader.connect() as conn:
        items, _ = events.page(conn, since=cursor, limit=200, filters={})
    return items


@router.get("/{event_id}", summary="Get one event")
def get_event(request: Request, event_id: EventId, _: Principal = Depends(require("readonly"))) -> JSON:
    with runtime(request).reader.connect() as conn:
        row = conn.execute(select(events_table).where(events_table.c.id == event_id)).mappings().first()
    if row is None:
        raise NotFound(f"no event with id {event_id}", "list events with GET /api/v1/events")
    return JSON(events.to_json(row))


@router.post(
    "/{event_id}/acknowledge", status_code=202, responses=JOB_RESPONSES, summary="Acknowledge (a job)"
)
def acknowledge_event(
    request: Request, event_id: EventId, wait: Wait = 0, principal: Principal = Depends(require("admin"))
) -> JSON:
    with runtime(request).engine.connect() as conn:
        row = conn.execute(select(events_table.c.acknowledged).where(events_table.c.id == event_id)).first()
        if row is None:
            raise NotFound(f"no event with id {event_id}", "list events with GET /api/v1/events")
        if row[0]:
            raise Conflict(f"event {event_id} is already acknowledged", "nothing to do")
        return submit_job(
            request,
            principal,
            kind="event.acknowledge",
            summary=f"acknowledge event {event_id}",
            payload={"event_id": event_id},
            object_type="event",
            object_id=str(event_id),
            conn=conn,
            wait=wait,
        )


@jobs.handler("event.acknowledge")
def _acknowledge(ctx: jobs.JobContext) -> dict:
    from sqlalchemy import update

    event_id = int(ctx.request["event_id"])
    with ctx.engine.begin() as conn:
        done = conn.execute(
            update(events_table)
            .where(events_table.c.id == event_id, events_table.c.acknowledged.is_(False))
            .values(acknowledged=True, acknowledged_by=ctx.created_by, acknowledged_at=utcnow())
        ).rowcount
        if not done:
            raise Conflict(f"event {event_id} is already acknowledged or gone", "nothing to do")
    return {"event_id": event_id}


@router.post("/ingest", status_code=202, summary="Agents push events (idempotent by their ids)")
def ingest_events(
    request: Request, body: Annotated[AgentEvents, Body()], principal: Principal = Depends(require_agent)
) -> JSON:
    source = principal.server_id or f"user:{principal.name}"
    rt = runtime(request)
    batch = [e.model_dump() for e in body.events]
    with rt.engine.begin() as conn:
        accepted, duplicates = events.ingest_from_agent(conn, source, batch)
        back = False
        if principal.server_id:
            follow_agent_events(conn, principal.server_id, batch)
            back = note_contact(conn, principal.server_id, "pushes events again")
    if accepted or back:
        rt.bell.ring()
    return JSON({"accepted": accepted, "duplicates": duplicates}, status_code=202)
