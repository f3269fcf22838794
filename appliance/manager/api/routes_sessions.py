"""/sessions: log in for a bearer token, list and end sessions."""

import datetime as dt
import secrets
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request
from sqlalchemy import delete, select
from starlette.responses import Response

from appliance.manager import sshkeys
from appliance.manager.api.auth import Principal, authenticate, require, token_hash
from appliance.manager.api.common import runtime
from appliance.manager.api.responses import JSON
from appliance.manager.models import SessionCreate
from appliance.manager.problems import Forbidden, NotFound, Unauthorized
from appliance.manager.resources import new_id
from appliance.manager.schema import sessions, user_ssh_keys, users
from appliance.manager.timeutil import iso, utcnow

router = APIRouter(prefix="/sessions", tags=["sessions"])


@router.post("", status_code=201, summary="Log in: exchange a user name and password for a bearer token")
def create_session(request: Request, body: Annotated[SessionCreate, Body()]) -> JSON:
    rt = runtime(request)
    if body.password is not None:
        principal = rt.auth.password_login(body.username, body.password)
    else:
        principal = _key_login(request, body.username, str(body.ssh_public_key))
    token = secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + dt.timedelta(minutes=rt.config.session_ttl_minutes)
    session_id = new_id()
    with rt.engine.begin() as conn:
        conn.execute(sessions.delete().where(sessions.c.expires_at < now))
        conn.execute(
            sessions.insert().values(
                id=session_id,
                token_hash=token_hash(token),
                user_id=principal.user_id,
                created_at=now,
                expires_at=expires,
            )
        )
    return JSON(
        {
            "id": session_id,
            "token": token,
            "user": principal.name,
            "role": principal.role,
            "expires_at": iso(expires),
        },
        status_code=201,
        headers={"Location": f"/api/v1/sessions/{session_id}"},
    )


@router.get("", summary="Your sessions (all sessions for admins)")
def list_sessions(request: Request, principal: Principal = Depends(require("readonly"))) -> JSON:
    query = (
        select(sessions.c.id, sessions.c.created_at, sessions.c.expires_at, users.c.name)
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.expires_at > utcnow())
        .order_by(sessions.c.created_at)
    )
    if not principal.allows("admin"):
        query = query.where(sessions.c.user_id == principal.user_id)
    with runtime(request).reader.connect() as conn:
        rows = conn.execute(query).mappings().all()
    items = [
        {
            "id": r["id"],
            "user": r["name"],
            "created_at": iso(r["created_at"]),
            "expires_at": iso(r["expires_at"]),
            "current": r["id"] == principal.session_id,
        }
        for r in rows
    ]
    return JSON({"items": items, "total": len(items)})


@router.delete("/{session_id}", status_code=204, response_class=Response, summary="Log out (end a session)")
def delete_session(
    request: Request,
    session_id: Annotated[str, Path(min_length=1, max_length=36)],
    principal: Principal = Depends(require("readonly")),
) -> Response:
    rt = runtime(request)
    query = delete(sessions).where(sessions.c.id == session_id)
    if not principal.allows("admin"):
        query = query.where(sessions.c.user_id == principal.user_id)
    with rt.engine.begin() as conn:
        if not conn.execute(query).rowcount:
            raise NotFound(f"no session with id {session_id!r}", "list them with GET /api/v1/sessions")
    rt.auth.cache.drop_session(session_id)
    return Response(status_code=204)


def _key_login(request: Request, username: str, key_line: str) -> Principal:
    """Only the SSH front end (companion certificate) may log a user in by a key it has verified."""
    caller = authenticate(request)
    if caller.kind != "companion":
        raise Forbidden(
            "only the manager's SSH front end may log users in by SSH key", "log in with a password"
        )
    key = sshkeys.parse(key_line)
    with runtime(request).reader.connect() as conn:
        row = conn.execute(
            select(users.c.id, users.c.name, users.c.role)
            .join(user_ssh_keys, user_ssh_keys.c.user_id == users.c.id)
            .where(users.c.name == username, user_ssh_keys.c.fingerprint == key.fingerprint)
        ).first()
    if row is None:
        raise Unauthorized(
            f"{key.fingerprint} is not an SSH key of user {username!r}", "add it with addSshKey"
        )
    return Principal("user", row.name, row.role, user_id=row.id)
