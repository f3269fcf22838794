"""The FastAPI application: routers, error handlers, body-size limits, the OpenAPI document."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appliance import __version__
from appliance.manager import models, resources
from appliance.manager.api import (
    routes_backups,
    routes_events,
    routes_jobs,
    routes_servers,
    routes_sessions,
    routes_sshkeys,
    routes_statistics,
    routes_system,
    routes_trust,
    routes_vms,
)
from appliance.manager.api.auth import Principal, require
from appliance.manager.api.crud import crud_router
from appliance.manager.api.responses import ERROR_SCHEMA, JSON, error
from appliance.manager.passwords import hash_password
from appliance.manager.problems import ManagerProblem
from appliance.manager.runtime import ManagerRuntime

log = logging.getLogger(__name__)
PREFIX = "/api/v1"
INGEST_PATHS = (f"{PREFIX}/events/ingest", f"{PREFIX}/statistics/ingest")


class BodyLimit:
    """Read the request body up front and refuse it with 413 once it passes the limit.

    Declared lengths are checked before reading; chunked bodies are counted as they arrive.
    """

    def __init__(self, app: ASGIApp, limit: int, ingest_limit: int) -> None:
        self.app, self.limit, self.ingest_limit = app, limit, ingest_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.ingest_limit if scope["path"] in INGEST_PATHS else self.limit
        too_large = error(
            413, "payload_too_large", f"the request body is over {limit} bytes", {"Connection": "close"}
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:10]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _prepare_user(values: dict[str, Any]) -> dict[str, Any]:
    values = dict(values)
    if values.get("password") is not None:
        values["password_hash"] = hash_password(values.pop("password"))
    values.pop("password", None)
    return values


def create_app(rt: ManagerRuntime) -> FastAPI:
    app = FastAPI(
        title="Appliance manager WS-API",
        version=__version__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        default_response_class=JSON,
    )
    app.state.runtime = rt

    @app.exception_handler(ManagerProblem)
    async def _problem(_: Request, exc: ManagerProblem) -> JSON:
        status = exc.status
        headers = {"WWW-Authenticate": 'Basic realm="appliance", Bearer'} if status == 401 else None
        return error(
            status, exc.code, str(exc).replace("\n  hint: ", " (hint: ") + (")" if exc.hint else ""), headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSON:
        return error(400, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSON:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error(
            exc.status_code,
            codes.get(exc.status_code, "http_error"),
            str(exc.detail),
            dict(exc.headers or {}),
        )

    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, exc: OperationalError) -> JSON:
        log.error("database error: %s", exc)
        return error(503, "database_unavailable", "the database is not reachable; try again shortly")

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSON:
        log.exception("unhandled error")
        return error(500, "internal_error", f"internal error ({type(exc).__name__}); see the manager log")

    routers = [
        routes_system.router,
        routes_trust.router,
        routes_servers.router,
        routes_vms.router,
        routes_sshkeys.router,
        crud_router(resources.SERVER_POOL, models.ServerPoolCreate, models.ServerPoolUpdate),
        crud_router(resources.SERVER, models.ServerCreate, models.ServerUpdate, creatable=False),
        crud_router(resources.REPOSITORY, models.RepositoryCreate, models.RepositoryUpdate),
        crud_router(resources.VM, models.VmCreate, models.VmUpdate),
        crud_router(
            resources.USER,
            models.UserCreate,
            models.UserUpdate,
            read_role="admin",
            prepare_create=_prepare_user,
            prepare_update=_prepare_user,
        ),
        routes_jobs.router,
        routes_events.router,
        routes_statistics.router,
        routes_backups.router,
        routes_sessions.router,
    ]
    for router in routers:
        app.include_router(
            router,
            prefix=PREFIX,
            responses={
                "4XX": {"description": "error", "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            },
        )

    @app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
    def openapi(_: Principal = Depends(require("readonly"))) -> JSON:
        return JSON(openapi_document(app))

    app.add_middleware(
        BodyLimit, limit=rt.config.max_body_bytes, ingest_limit=rt.config.ingest_max_body_bytes
    )
    return app


def openapi_document(app: FastAPI) -> dict[str, Any]:
    if not app.openapi_schema:
        doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
        doc["components"] = doc.get("components", {})
        doc["components"]["securitySchemes"] = {
            "basic": {"type": "http", "scheme": "basic"},
            "bearer": {"type": "http", "scheme": "bearer"},
        }
        doc["security"] = [{"basic": []}, {"bearer": []}]
        app.openapi_schema = doc
    return app.openapi_schema
