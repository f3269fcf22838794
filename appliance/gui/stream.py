"""Live updates: the manager's event stream, proxied per GUI session.

The browser's EventSource talks to /ui/stream with its session cookie; the GUI opens
/api/v1/events/stream with the user's own token and relays each event as ``id:`` + ``data:``
(the event's JSON). The browser never sees the token. A relay ends after ``stream_seconds``; the
browser reconnects with Last-Event-ID and misses nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from appliance.gui import queries
from appliance.gui.apiclient import ApiError
from appliance.gui.sessions import GuiSession
from appliance.gui.web import current_session, gui_of, secure


def relay_block(lines: list[str]) -> bytes | None:
    """One SSE block from the manager as the browser gets it: id and data only; comments become a
    keep-alive; anything else (retry, event names) is dropped."""
    event_id, data, comment = None, [], False
    for line in lines:
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id" and value.isdigit():
            event_id = value
        elif name == "data":
            data.append(value)
        elif name == "":
            comment = True
    if data and event_id is not None:
        return f"id: {event_id}\ndata: {''.join(data)}\n\n".encode()
    if comment:
        return b": keep-alive\n\n"
    return None


def error_block(err: ApiError) -> bytes:
    body = json.dumps({"status": err.status, "message": err.message})
    return f"event: gui-error\ndata: {body}\n\n".encode()


async def _blocks(request: Request, upstream: httpx.Response, seconds: float) -> AsyncIterator[bytes]:
    """Relayed blocks until ``seconds`` pass, the manager ends the stream or the browser leaves
    (checked every second, so a closed tab frees its upstream stream at once)."""
    lines: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1000)

    async def pump() -> None:
        try:
            async for line in upstream.aiter_lines():
                await lines.put(line)
        finally:
            await lines.put(None)

    reader = asyncio.create_task(pump())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    block: list[str] = []
    try:
        while (remaining := deadline - loop.time()) > 0:
            try:
                line = await asyncio.wait_for(lines.get(), min(1.0, remaining))
            except TimeoutError:
                if await request.is_disconnected():
                    return
                continue
            if line is None:
                return
            if line:
                block.append(line)
                continue
            out = relay_block(block)
            block = []
            if out:
                yield out
    finally:
        # Let the reader finish before the upstream response is closed under it.
        reader.cancel()
        await asyncio.wait([reader])


async def _relay(request: Request, session: GuiSession, last_event_id: str | None) -> AsyncIterator[bytes]:
    gui = gui_of(request)
    yield b"retry: 1000\n\n"
    try:
        if not last_event_id:
            # Start from the newest event and tell the browser, so a reconnect resumes from here.
            newest = await queries.latest_events(gui.api, session.token, 1)
            last_event_id = str(newest[0]["id"]) if newest else "0"
            yield f"id: {last_event_id}\n\n".encode()
        async with gui.api.stream(session.token, last_event_id) as upstream:
            async for out in _blocks(request, upstream, gui.config.stream_seconds):
                yield out
    except ApiError as err:
        yield error_block(err)


async def stream(request: Request) -> Response:
    session = current_session(request)
    if session is None:
        # EventSource stops retrying on a non-200 answer; the page shows "offline".
        return secure(Response("log in first", status_code=401))
    last = request.headers.get("last-event-id") or request.query_params.get("since")
    if last is not None and not last.isdigit():
        last = None
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    response = StreamingResponse(
        _relay(request, session, last), media_type="text/event-stream", headers=headers
    )
    return secure(response)
