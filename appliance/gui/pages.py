"""The GUI's pages (GET). Each reads the WS-API with the user's token; live regions re-render alone."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from appliance.gui import queries
from appliance.gui.apiclient import ApiError
from appliance.gui.sessions import GuiSession
from appliance.gui.web import gui_of, page, render

JOB_STATES = ("queued", "running", "succeeded", "failed", "aborted")
SEVERITIES = ("info", "warning", "error", "critical")


def _range(request: Request) -> tuple[str, int]:
    name = request.query_params.get("range", "1h")
    if name not in queries.RANGES:
        name = "1h"
    return name, queries.RANGES[name]


async def _optional(coro: Any, default: Any) -> Any:
    """For reads a role may not have (or a manager may not offer yet): the default instead of an error."""
    try:
        return await coro
    except ApiError as err:
        if err.status in (401,):
            raise
        return default


@page
async def dashboard(request: Request, session: GuiSession) -> Response:
    gui = gui_of(request)
    data = await queries.dashboard(gui.api, session.token)
    return render(request, session, "dashboard.html", nav="dashboard", **data)


@page
async def servers(request: Request, session: GuiSession) -> Response:
    gui = gui_of(request)
    items, pools = await asyncio.gather(
        queries.all_items(gui.api, session.token, "/servers"),
        queries.all_items(gui.api, session.token, "/server-pools"),
    )
    return render(
        request,
        session,
        "servers.html",
        nav="servers",
        servers=items,
        pools={p["id"]: p for p in pools},
    )


@page
async def server_detail(request: Request, session: GuiSession) -> Response:
    gui = gui_of(request)
    server_id = request.path_params["server_id"]
    range_name, span = _range(request)
    server, vms, charts, events, jobs = await asyncio.gather(
        gui.api.get(f"/servers/{server_id}", session.token),
        queries.all_items(gui.api, session.token, "/vms", server_id=server_id),
        queries.server_charts(gui.api, session.token, server_id, span),
        queries.latest_events(gui.api, session.token, 20, object_id=server_id),
        gui.api.get("/jobs", session.token, object_id=server_id, limit=10),
    )
    pool = None
    if server.get("pool_id"):
        pool = await _optional(gui.api.get(f"/server-pools/{server['pool_id']}", session.token), None)
    return render(
        request,
        session,
        "server.html",
        nav="servers",
        server=server,
        pool=pool,
        vms=vms,
        charts=charts,
        events=events,
        jobs=jobs["items"],
        range_name=range_name,
        ranges=list(queries.RANGES),
    )


@page
async def vms(request: Request, session: GuiSession) -> Response:
    gui = gui_of(request)
    state = request.query_params.get("state") or None
    items, servers_, pools = await asyncio.gather(
        queries.all_items(gui.api, session.token, "/vms", state=state),
        queries.all_items(gui.api, session.token, "/servers"),
        queries.all_items(gui.api, session.token, "/server-pools"),
    )
    return render(
        request,
        session,
        "vms.html",
        nav="vms",
        vms=items,
        servers={s["id"]: s for s in servers_},
        pools={p["id"]: p for p in pools},
        state=state,
    )


@page
async def vm_detail(request: Request, session: GuiSession) -> Response:
    gui = gui_of(request)
    vm_id = request.path_params["vm_id"]
    range_name, span = _range(request)
    vm, charts, events, jobs = await asyncio.gather(
        gui.api.get(f"/vms/{vm_id}", session.token),
        queries.vm_charts(gui.api, session.token, vm_id, span),
        queries.latest_events(gui.api, session.token, 50, object_id=vm_id),
        gui.api.get("/jobs", session.token, object_id=vm_id, limit=10),
    )
    server = None
    if vm.get("server_id"):
        server = await _optional(gui.api.get(f"/servers/{vm['server_id']}", session.token), None)
    return render(
        request,
        session,
        "vm.html",
        nav="vms",
        vm=vm,
        server=server,
        charts=charts,
        events=events,
        jobs=jobs["items"],
        range_name=range_name,
        ranges=list(queries.RANGES),
    )


@page
async def pools(request: Request, session: GuiSession) -> Response:
    gui = gui_of(request)
    items, servers_, vms_ = await asyncio.gather(
        queries.all_items(gui.api, session.token, "/server-pools"),
        queries.all_items(gui.api, session.token, "/servers"),
        queries.all_items(gui.api, session.token, "/vms"),
    )
    members: dict[str, list[dict[str, Any]]] = {}
    for s in servers_:
        members.setdefault(s.get("pool_id") or "", []).append(s)
    vm_counts: dict[str, int] = {}
    for v in vms_:
        vm_counts[v.get("pool_id") or ""] = vm_counts.get(v.get("pool_id") or "", 0) + 1
    return render(
        request, session, "pools.html", nav="pools", pools=items, members=members, vm_counts=vm_counts
    )


@page
async def jobs(request: Request, session: GuiSession) -> Response:
    gui = gui_of(request)
    state = request.query_params.get("state") or None
    if state not in JOB_STATES:
        state = None
    body = await gui.api.get("/jobs", session.token, state=state, limit=100)
    active = any(j["state"] in ("queued", "running") for j in body["items"])
    return render(
        request,
        session,
        "jobs.html",
        nav="jobs",
        jobs=body["items"],
        total=body["total"],
        state=state,
        states=JOB_STATES,
        active=active,
    )


@page
async def events(request: Request, session: GuiSession) -> Response:
    gui = gui_of(request)
    show = request.query_params.get("show", "unacknowledged")
    severity = request.query_params.get("severity") or None
    if severity not in SEVERITIES:
        severity = None
    filters: dict[str, Any] = {"severity": severity}
    if show != "all":
        show = "unacknowledged"
        filters["acknowledged"] = False
    items = await queries.latest_events(gui.api, session.token, 100, **filters)
    return render(
        request,
        session,
        "events.html",
        nav="events",
        events=items,
        show=show,
        severity=severity,
        severities=SEVERITIES,
    )


@page
async def backups(request: Request, session: GuiSession) -> Response:
    gui = gui_of(request)
    items, config, running = await asyncio.gather(
        gui.api.get("/backups", session.token),
        gui.api.get("/backups/config", session.token),
        gui.api.get("/jobs", session.token, kind="backup.create", limit=5),
    )
    return render(
        request,
        session,
        "backups.html",
        nav="backups",
        backups=items["items"],
        config=config,
        jobs=running["items"],
    )


@page
async def trust(request: Request, session: GuiSession) -> Response:
    gui = gui_of(request)
    ca = await gui.api.get("/ca", session.token)
    tokens = None
    if session.is_admin:
        tokens = await _optional(gui.api.get("/enrollment-tokens", session.token), None)
    return render(
        request,
        session,
        "trust.html",
        nav="trust",
        ca=ca,
        tokens=tokens["items"] if tokens else None,
    )


@page
async def ca_certificate(request: Request, session: GuiSession) -> Response:
    """The manager CA certificate as a PEM download."""
    ca = await gui_of(request).api.get("/ca", session.token)
    return Response(
        ca["certificate_pem"],
        media_type="application/x-pem-file",
        headers={"Content-Disposition": 'attachment; filename="manager-ca.crt"'},
    )
