"""Trust: the CA certificate (public), enrollment tokens, and enrollment of a server by token."""

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request
from sqlalchemy import delete, select
from starlette.responses import Response

from appliance import pki
from appliance.manager import events, trust
from appliance.manager.api.auth import Principal, require
from appliance.manager.api.common import runtime
from appliance.manager.api.responses import JSON
from appliance.manager.models import Enrollment, TokenCreate
from appliance.manager.problems import Conflict, NotFound
from appliance.manager.schema import enrollment_tokens, servers
from appliance.manager.servers import remember, upsert_owned, urls
from appliance.manager.timeutil import iso, utcnow

router = APIRouter(tags=["trust"])


@router.get("/ca", summary="The manager CA certificate and its SHA-256 fingerprint (no authentication)")
def ca(request: Request) -> JSON:
    cert = pki.load_cert(runtime(request).paths.ca_cert)
    return JSON({"fingerprint_sha256": pki.fingerprint(cert), "certificate_pem": pki.cert_pem(cert).decode()})


@router.post("/enrollment-tokens", status_code=201, summary="Make an enrollment token (shown once)")
def create_token(
    request: Request, body: Annotated[TokenCreate, Body()], principal: Principal = Depends(require("admin"))
) -> JSON:
    rt = runtime(request)
    with rt.engine.begin() as conn:
        token_id, token, expires = trust.create_token(
            conn, ttl=dt.timedelta(seconds=body.ttl_seconds), uses=body.uses, created_by=principal.name
        )
        events.record(
            conn,
            type="token.created",
            object_type="enrollment_token",
            object_id=token_id,
            message=f"{principal.name} made an enrollment token for {body.uses} use(s), "
            f"valid until {iso(expires)}",
        )
    rt.bell.ring()
    return JSON(
        {"id": token_id, "token": token, "uses": body.uses, "expires_at": iso(expires)},
        status_code=201,
        headers={"Location": f"/api/v1/enrollment-tokens/{token_id}"},
    )


@router.get("/enrollment-tokens", summary="Enrollment tokens (without their secrets)")
def list_tokens(request: Request, _: Principal = Depends(require("admin"))) -> JSON:
    with runtime(request).reader.connect() as conn:
        rows = conn.execute(
            select(enrollment_tokens).order_by(enrollment_tokens.c.created_at.desc())
        ).mappings()
        items = [
            {
                "id": r["id"],
                "uses_left": r["uses_left"],
                "uses": r["uses_total"],
                "created_by": r["created_by"],
                "created_at": iso(r["created_at"]),
                "expires_at": iso(r["expires_at"]),
                "usable": r["uses_left"] > 0 and r["expires_at"] > utcnow(),
            }
            for r in rows
        ]
    return JSON({"items": items, "total": len(items)})


@router.delete(
    "/enrollment-tokens/{token_id}", status_code=204, response_class=Response, summary="Withdraw a token"
)
def delete_token(
    request: Request, token_id: Annotated[str, Path(max_length=36)], _: Principal = Depends(require("admin"))
) -> Response:
    with runtime(request).engine.begin() as conn:
        if not conn.execute(delete(enrollment_tokens).where(enrollment_tokens.c.id == token_id)).rowcount:
            raise NotFound(
                f"no enrollment token with id {token_id!r}", "list them with GET /api/v1/enrollment-tokens"
            )
    return Response(status_code=204)


@router.post(
    "/enroll", status_code=201, summary="A server enrols with a token: its CSR is signed, it becomes owned"
)
def enroll(request: Request, body: Annotated[Enrollment, Body()]) -> JSON:
    rt = runtime(request)
    base = str(request.base_url).rstrip("/")
    try:
        with rt.engine.begin() as conn:
            trust.consume_token(conn, body.token)
            known = (
                conn.execute(
                    select(servers.c.agent_fingerprint, servers.c.state).where(
                        servers.c.id == body.server_uuid
                    )
                )
                .mappings()
                .first()
            )
            if known and known["state"] == "owned" and known["agent_fingerprint"] != body.agent_fingerprint:
                raise Conflict(
                    f"server {body.server_uuid} is already enrolled with another agent certificate",
                    "release it first (POST /api/v1/servers/{id}/release with force) if it was reinstalled",
                )
            authority = rt.authority()
            cert = authority.issue_for_csr(conn, body.csr_pem, body.server_uuid)
            upsert_owned(
                conn,
                {
                    "id": body.server_uuid,
                    "name": body.hostname,
                    "address": body.address,
                    "agent_port": body.agent_port,
                    "state": "owned",
                    "agent_fingerprint": body.agent_fingerprint,
                    "last_contact_at": utcnow(),
                },
            )
            events.record(
                conn,
                type="server.enrolled",
                object_type="server",
                object_id=body.server_uuid,
                message=f"server {body.hostname} ({body.address}) enrolled with a token",
            )
    except Exception as err:
        with rt.engine.begin() as conn:
            events.record(
                conn,
                type="server.enrollment_refused",
                severity="warning",
                object_type="server",
                object_id=body.server_uuid,
                message=f"enrollment of {body.hostname} ({body.address}) refused: {err}".split("\n")[0],
            )
        rt.bell.ring()
        raise
    remember(rt, body.server_uuid, body.hostname, body.address, body.agent_port, body.agent_fingerprint)
    rt.bell.ring()
    return JSON(
        {
            "manager_uuid": rt.config.manager_uuid,
            "ca_pem": authority.ca_pem(),
            "certificate_pem": pki.cert_pem(cert).decode(),
            **urls(base),
        },
        status_code=201,
    )
