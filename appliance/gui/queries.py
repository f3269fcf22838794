"""What the pages show, read from the WS-API with the user's token (several calls run at once)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from appliance.gui.apiclient import WsApi
from appliance.gui.charts import Chart, format_bytes, format_percent, line_chart

PAGE = 1000  # the WS-API's largest page
CountAfter = Callable[[int], Awaitable[int]]


async def find_cursor(count_after: CountAfter, newest: int, max_steps: int = 8) -> int:
    """An event id ``since`` with at least ``newest`` events after it, as close to the end as a few
    counting calls get it.

    ``count_after(since)`` says how many (matching) events have an id > since. Ids only grow, each
    id holds at most one event, so moving the cursor forward by the surplus never overshoots; gaps
    in the ids (rolled-back inserts) just take more steps.
    """
    since = 0
    for _ in range(max_steps):
        surplus = await count_after(since) - newest
        if surplus <= 0:
            break
        since += surplus
    return since


async def latest_events(api: WsApi, token: str, newest: int = 50, **filters: Any) -> list[dict[str, Any]]:
    """The ``newest`` most recent events matching ``filters``, newest first.

    The WS-API pages events forward from a cursor, so find a cursor near the end, then page on."""

    async def count_after(since: int) -> int:
        body = await api.get("/events", token, since=since, limit=1, **filters)
        return int(body["total"])

    since = await find_cursor(count_after, newest)
    items: list[dict[str, Any]] = []
    for _ in range(20):  # bounded; only huge id gaps need more than one page
        body = await api.get("/events", token, since=since, limit=PAGE, **filters)
        items.extend(body["items"])
        items = items[-newest:]
        if len(body["items"]) < PAGE:
            break
        since = int(body["next_since"])
    return list(reversed(items))


async def total(api: WsApi, token: str, path: str, **filters: Any) -> int:
    body = await api.get(path, token, limit=1, **filters)
    return int(body["total"])


async def all_items(api: WsApi, token: str, path: str, **filters: Any) -> list[dict[str, Any]]:
    """Up to one page (1,000) of a collection, ordered by name."""
    body = await api.get(path, token, limit=PAGE, **filters)
    return list(body["items"])


async def dashboard(api: WsApi, token: str) -> dict[str, Any]:
    (
        servers,
        pools,
        vms_total,
        vms_running,
        vms_error,
        running_jobs,
        queued,
        unacked,
        unacked_bad,
        recent,
    ) = await asyncio.gather(
        all_items(api, token, "/servers"),
        total(api, token, "/server-pools"),
        total(api, token, "/vms"),
        total(api, token, "/vms", state="running"),
        total(api, token, "/vms", state="error"),
        api.get("/jobs", token, state="running", limit=20),
        total(api, token, "/jobs", state="queued"),
        total(api, token, "/events", acknowledged=False),
        asyncio.gather(
            total(api, token, "/events", acknowledged=False, severity="error"),
            total(api, token, "/events", acknowledged=False, severity="critical"),
        ),
        latest_events(api, token, 8),
    )
    return {
        "servers_total": len(servers),
        "servers_by_state": sorted(Counter(s["state"] for s in servers).items()),
        "pools_total": pools,
        "vms_total": vms_total,
        "vms_running": vms_running,
        "vms_error": vms_error,
        "running_jobs": running_jobs["items"],
        "running_total": running_jobs["total"],
        "queued_total": queued,
        "unacked_total": unacked,
        "unacked_bad": sum(unacked_bad),
        "recent_events": recent,
    }


RANGES = {"1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400}


async def series(
    api: WsApi, token: str, object_type: str, object_id: str, metric: str, start: float, end: float
) -> list[tuple[float, float]]:
    body = await api.get(
        "/statistics",
        token,
        object_type=object_type,
        object_id=object_id,
        metric=metric,
        start=start,
        end=end,
        resolution="auto",
    )
    return [(float(p["time"]), float(p["value"])) for p in body["points"]]


async def server_charts(api: WsApi, token: str, server_id: str, span: int) -> list[Chart]:
    end = time.time()
    start = end - span
    cpu, used, total_mem = await asyncio.gather(
        *(
            series(api, token, "server", server_id, m, start, end)
            for m in ("cpu_percent", "memory_used_bytes", "memory_total_bytes")
        )
    )
    mem_max = max((v for _, v in total_mem), default=None)
    return [
        line_chart("CPU", [("CPU use", cpu)], start=start, end=end, y_max=100, y_format=format_percent),
        line_chart(
            "Memory",
            [("used", used), ("total", total_mem)],
            start=start,
            end=end,
            y_max=mem_max or None,
            y_format=format_bytes,
        ),
    ]


async def vm_charts(api: WsApi, token: str, vm_id: str, span: int) -> list[Chart]:
    end = time.time()
    start = end - span
    cpu, memory = await asyncio.gather(
        series(api, token, "vm", vm_id, "cpu_percent", start, end),
        series(api, token, "vm", vm_id, "memory_bytes", start, end),
    )
    return [
        line_chart("CPU", [("CPU use", cpu)], start=start, end=end, y_max=100, y_format=format_percent),
        line_chart("Memory", [("memory", memory)], start=start, end=end, y_format=format_bytes),
    ]
