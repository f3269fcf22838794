"""/users/{id}/ssh-keys: the SSH public keys a user logs in to the CLI with (admins: anyone's)."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from appliance.manager import events, resources, sshkeys
from appliance.manager.api.auth import Principal, require
from appliance.manager.api.common import runtime
from appliance.manager.api.crud import IdPath
from appliance.manager.api.responses import JSON
from appliance.manager.models import SshKeyCreate
from appliance.manager.problems import Conflict, Forbidden, NotFound
from appliance.manager.schema import user_ssh_keys
from appliance.manager.timeutil import iso, utcnow

router = APIRouter(prefix="/users/{object_id}/ssh-keys", tags=["users"])


def _own_or_admin(principal: Principal, user_id: str) -> None:
    if principal.user_id != user_id and not principal.allows("admin"):
        raise Forbidden("only admins may manage other users' SSH keys", "manage your own keys")


def _json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "fingerprint": row.fingerprint,
        "public_key": row.public_key,
        "comment": row.comment,
        "created_at": iso(row.created_at),
    }


@router.get("", summary="A user's SSH public keys")
def list_keys(
    request: Request, object_id: IdPath, principal: Principal = Depends(require("readonly"))
) -> JSON:
    _own_or_admin(principal, object_id)
    with runtime(request).reader.connect() as conn:
        resources.fetch(conn, resources.USER, object_id)
        rows = conn.execute(
            select(user_ssh_keys)
            .where(user_ssh_keys.c.user_id == object_id)
            .order_by(user_ssh_keys.c.created_at)
        ).all()
    return JSON({"items": [_json(r) for r in rows], "total": len(rows)})


@router.post("", status_code=201, summary="Add an SSH public key (a credential, like a session: not a job)")
def add_key(
    request: Request,
    object_id: IdPath,
    body: Annotated[SshKeyCreate, Body()],
    principal: Principal = Depends(require("readonly")),
) -> JSON:
    _own_or_admin(principal, object_id)
    key = sshkeys.parse(body.public_key)
    rt = runtime(request)
    key_id = resources.new_id()
    with rt.engine.begin() as conn:
        user = resources.fetch(conn, resources.USER, object_id)
        try:
            conn.execute(
                insert(user_ssh_keys).values(
                    id=key_id,
                    user_id=object_id,
                    fingerprint=key.fingerprint,
                    public_key=key.public_key,
                    comment=key.comment,
                    created_at=utcnow(),
                )
            )
        except IntegrityError:
            raise Conflict(
                f"user {user['name']} already has the key {key.fingerprint}", "nothing to do"
            ) from None
        events.record(
            conn,
            type="user.ssh_key_added",
            object_type="user",
            object_id=object_id,
            message=f"{principal.name} added SSH key {key.fingerprint} for {user['name']}",
        )
        row = conn.execute(select(user_ssh_keys).where(user_ssh_keys.c.id == key_id)).one()
    rt.bell.ring()
    return JSON(
        _json(row), status_code=201, headers={"Location": f"/api/v1/users/{object_id}/ssh-keys/{key_id}"}
    )


@router.delete("/{key_id}", status_code=204, response_class=Response, summary="Remove an SSH public key")
def remove_key(
    request: Request,
    object_id: IdPath,
    key_id: Annotated[str, Path(max_length=64)],
    principal: Principal = Depends(require("readonly")),
) -> Response:
    _own_or_admin(principal, object_id)
    rt = runtime(request)
    with rt.engine.begin() as conn:
        row = conn.execute(
            select(user_ssh_keys).where(
                user_ssh_keys.c.user_id == object_id,
                (user_ssh_keys.c.id == key_id) | (user_ssh_keys.c.fingerprint == key_id),
            )
        ).first()
        if row is None:
            raise NotFound(f"user {object_id} has no SSH key {key_id!r}", "list them with GET .../ssh-keys")
        conn.execute(delete(user_ssh_keys).where(user_ssh_keys.c.id == row.id))
        events.record(
            conn,
            type="user.ssh_key_removed",
            object_type="user",
            object_id=object_id,
            message=f"{principal.name} removed SSH key {row.fingerprint}",
        )
    rt.bell.ring()
    return Response(status_code=204)
