"""Health (no auth), the manager's identity, its CA, and the current user."""

from fastapi import APIRouter, Depends, Request
from sqlalchemy import text

from appliance import __version__
from appliance.manager.api.auth import Principal, require
from appliance.manager.api.common import runtime
from appliance.manager.api.responses import JSON, error

router = APIRouter(tags=["system"])


@router.get("/health", summary="Liveness and database reachability (no authentication)")
def health(request: Request) -> JSON:
    try:
        with runtime(request).reader.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as err:
        return error(503, "database_unavailable", f"the database does not answer: {type(err).__name__}")
    return JSON({"status": "ok"})


@router.get("/", summary="The manager: identity and version")
def manager_info(request: Request, _: Principal = Depends(require("readonly"))) -> JSON:
    rt = runtime(request)
    return JSON({"manager_uuid": rt.config.manager_uuid, "version": __version__, "api": "v1"})


@router.get("/me", summary="Who you are logged in as")
def me(principal: Principal = Depends(require("readonly"))) -> JSON:
    return JSON(
        {"name": principal.name, "role": principal.role, "kind": principal.kind, "id": principal.user_id}
    )
