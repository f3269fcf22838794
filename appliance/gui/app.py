"""The GUI as its own ASGI application (Starlette), mounted by the manager at /ui."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from appliance.gui import actions, login, pages, stream
from appliance.gui.apiclient import WsApi
from appliance.gui.config import GuiConfig, api_base_at
from appliance.gui.sessions import SessionStore
from appliance.gui.web import ActionHandler, Gui, action, current_session, redirect, render, secure

STATIC = Path(__file__).with_name("static")


class SecureStatic(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        secure(response)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response


def _post(path: str, handler: ActionHandler, back: str) -> Route:
    return Route(path, action(handler, back), methods=["POST"])


async def not_found(request: Request, exc: Exception) -> Response:
    from appliance.gui.apiclient import ApiError

    session = current_session(request)
    err = ApiError(404, "not_found", f"There is no page at {request.url.path}.")
    return render(request, session, "error.html", status=404, error=err, notes=None)


def create_gui_app(config: GuiConfig) -> Starlette:
    routes = [
        Route("/", pages.dashboard),
        Route("/login", login.login_form, methods=["GET"]),
        Route("/login", login.login, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/stream", stream.stream),
        Route("/servers", pages.servers),
        Route("/servers/{server_id}", pages.server_detail),
        _post("/servers/discover", actions.discover_server, "/servers"),
        _post("/servers/{server_id}/release", actions.release_server, "/servers"),
        _post("/servers/{server_id}/delete", actions.delete_server, "/servers"),
        Route("/vms", pages.vms, methods=["GET"]),
        _post("/vms", actions.create_vm, "/vms"),
        Route("/vms/{vm_id}", pages.vm_detail),
        _post("/vms/{vm_id}/start", actions.start_vm, "/vms"),
        _post("/vms/{vm_id}/stop", actions.stop_vm, "/vms"),
        _post("/vms/{vm_id}/delete", actions.delete_vm, "/vms"),
        Route("/pools", pages.pools, methods=["GET"]),
        _post("/pools", actions.create_pool, "/pools"),
        _post("/pools/{pool_id}/delete", actions.delete_pool, "/pools"),
        Route("/jobs", pages.jobs),
        _post("/jobs/{job_id:int}/abort", actions.abort_job, "/jobs"),
        Route("/events", pages.events),
        _post("/events/{event_id:int}/acknowledge", actions.acknowledge_event, "/events"),
        Route("/backups", pages.backups, methods=["GET"]),
        _post("/backups", actions.create_backup, "/backups"),
        _post("/backups/config", actions.configure_backups, "/backups"),
        _post("/backups/{backup_id}/delete", actions.delete_backup, "/backups"),
        Route("/trust", pages.trust),
        Route("/trust/ca.crt", pages.ca_certificate),
        _post("/trust/tokens", actions.create_token, "/trust"),
        _post("/trust/tokens/{token_id}/delete", actions.delete_token, "/trust"),
        Mount("/static", SecureStatic(directory=STATIC), name="static"),
    ]
    api = WsApi(config.api_base, config.ca_file)
    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found},
        middleware=[Middleware(LearnApiBase, api=api)],
    )
    app.state.gui = Gui(config, api, SessionStore(max_sessions=config.max_sessions))
    return app


class LearnApiBase:
    """Until the WS-API's address is known, take it from the local end of the first request."""

    def __init__(self, app: ASGIApp, api: WsApi) -> None:
        self.app, self.api = app, api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.api.base and scope["type"] == "http" and scope.get("server"):
            host, port = scope["server"][0], scope["server"][1]
            if port:
                self.api.base = api_base_at(host, int(port))
        await self.app(scope, receive, send)


async def to_gui(request: Request) -> Response:
    """The manager's root URL leads people to the GUI."""
    return redirect("/ui/")
