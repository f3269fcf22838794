"""Managed object types (servers, pools, VMs, repositories, users): checks, JSON form, job handlers.

A change is checked twice: when the API accepts it (so bad input gets a 4xx at once) and again
inside the job's transaction (so a race ends in a failed job, never a half-written object).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from appliance.manager import jobs
from appliance.manager import vms as vms_on_servers
from appliance.manager.problems import Conflict, NotFound
from appliance.manager.schema import repositories, server_pools, servers, users, vms
from appliance.manager.timeutil import iso, utcnow

Check = Callable[[Connection, str | None, dict[str, Any]], None]


@dataclass(frozen=True)
class ResourceType:
    object_type: str  # "vm"
    path: str  # "vms"
    label: str  # "VM"
    table: Table
    filters: tuple[str, ...]
    hidden: frozenset[str] = frozenset()
    references: dict[str, Table] = field(default_factory=dict)
    check_delete: Check | None = None
    check_update: Check | None = None
    # Work on the real object (an agent), inside the job's transaction: a failure rolls the row back.
    after_create: Callable[[jobs.JobContext, Connection, str], None] | None = None
    before_update: Callable[[jobs.JobContext, Connection, str, dict[str, Any]], None] | None = None
    before_delete: Callable[[jobs.JobContext, Connection, str], None] | None = None

    def to_json(self, row: RowMapping) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in row.items():
            if key in self.hidden:
                continue
            out[key] = iso(value) if key.endswith("_at") else value
        out["href"] = f"/api/v1/{self.path}/{row['id']}"
        return out


def fetch(conn: Connection, rtype: ResourceType, object_id: str) -> RowMapping:
    row = conn.execute(select(rtype.table).where(rtype.table.c.id == object_id)).mappings().first()
    if row is None:
        raise NotFound(f"no {rtype.label} with id {object_id!r}", f"list them with GET /api/v1/{rtype.path}")
    return row


def check_name_free(conn: Connection, rtype: ResourceType, name: str, own_id: str | None = None) -> None:
    query = select(rtype.table.c.id).where(rtype.table.c.name == name)
    found = conn.execute(query).scalar()
    if found is not None and found != own_id:
        raise Conflict(f"a {rtype.label} named {name!r} already exists (id {found})", "choose another name")


def check_references(conn: Connection, rtype: ResourceType, values: dict[str, Any]) -> None:
    for column, table in rtype.references.items():
        ref = values.get(column)
        if ref is not None and conn.execute(select(table.c.id).where(table.c.id == ref)).scalar() is None:
            raise NotFound(
                f"{column} {ref!r} does not exist", f"use the id of an existing object ({table.name})"
            )


def check_create(conn: Connection, rtype: ResourceType, values: dict[str, Any]) -> None:
    check_name_free(conn, rtype, values["name"])
    check_references(conn, rtype, values)


def check_update(conn: Connection, rtype: ResourceType, object_id: str, values: dict[str, Any]) -> RowMapping:
    row = fetch(conn, rtype, object_id)
    if values.get("name") is not None:
        check_name_free(conn, rtype, values["name"], object_id)
    check_references(conn, rtype, values)
    if rtype.check_update:
        rtype.check_update(conn, object_id, values)
    return row


def check_delete(conn: Connection, rtype: ResourceType, object_id: str) -> RowMapping:
    row = fetch(conn, rtype, object_id)
    if rtype.check_delete:
        rtype.check_delete(conn, object_id, {})
    return row


def _count(conn: Connection, table: Table, column: str, value: str | None) -> int:
    return int(
        conn.execute(select(func.count()).select_from(table).where(table.c[column] == value)).scalar_one()
    )


def _pool_empty(conn: Connection, object_id: str | None, _: dict[str, Any]) -> None:
    n = _count(conn, servers, "pool_id", object_id)
    if n:
        raise Conflict(f"the server pool still has {n} server(s)", "move or remove its servers first")


def _server_has_no_vms(conn: Connection, object_id: str | None, _: dict[str, Any]) -> None:
    n = _count(conn, vms, "server_id", object_id)
    if n:
        raise Conflict(f"the server still hosts {n} VM(s)", "migrate or delete its VMs first")


def _repository_unused(conn: Connection, object_id: str | None, _: dict[str, Any]) -> None:
    n = _count(conn, vms, "repository_id", object_id)
    if n:
        raise Conflict(f"the repository is still used by {n} VM(s)", "delete or move those VMs first")


def _vm_stopped(conn: Connection, object_id: str | None, _: dict[str, Any]) -> None:
    state = conn.execute(select(vms.c.state).where(vms.c.id == object_id)).scalar()
    if state not in ("stopped", "error"):
        raise Conflict(f"the VM is {state}", "stop it first")


def _admins_other_than(conn: Connection, user_id: str | None) -> int:
    query = select(func.count()).select_from(users).where(users.c.role == "admin", users.c.id != user_id)
    return int(conn.execute(query).scalar_one())


def _not_last_admin(conn: Connection, object_id: str | None, values: dict[str, Any]) -> None:
    demoting = values.get("role") not in (None, "admin")
    deleting = not values
    role = conn.execute(select(users.c.role).where(users.c.id == object_id)).scalar()
    if role == "admin" and (demoting or deleting) and _admins_other_than(conn, object_id) == 0:
        raise Conflict("this is the last admin user", "create another admin user first")


SERVER_POOL = ResourceType(
    "server_pool", "server-pools", "server pool", server_pools, ("name",), check_delete=_pool_empty
)
SERVER = ResourceType(
    "server",
    "servers",
    "server",
    servers,
    ("name", "state", "pool_id", "address"),
    references={"pool_id": server_pools},
    check_delete=_server_has_no_vms,
)
REPOSITORY = ResourceType(
    "repository",
    "repositories",
    "repository",
    repositories,
    ("name", "kind"),
    check_delete=_repository_unused,
)
VM = ResourceType(
    "vm",
    "vms",
    "VM",
    vms,
    ("name", "state", "server_id", "pool_id", "repository_id", "domain_type"),
    references={"server_id": servers, "pool_id": server_pools, "repository_id": repositories},
    check_delete=_vm_stopped,
    after_create=vms_on_servers.on_created,
    before_update=vms_on_servers.before_update,
    before_delete=vms_on_servers.before_delete,
)
USER = ResourceType(
    "user",
    "users",
    "user",
    users,
    ("name", "role"),
    hidden=frozenset({"password_hash"}),
    check_delete=_not_last_admin,
    check_update=_not_last_admin,
)

TYPES = {t.object_type: t for t in (SERVER_POOL, SERVER, REPOSITORY, VM, USER)}
INITIAL_STATE = {"server": "unowned", "vm": "stopped"}


def new_id() -> str:
    return str(uuid.uuid4())


def _integrity(rtype: ResourceType, err: IntegrityError) -> Conflict:
    return Conflict(f"the {rtype.label} conflicts with an existing one: {err.orig}", "choose another name")


def _create(ctx: jobs.JobContext) -> dict[str, Any]:
    rtype = TYPES[ctx.object_type or ""]
    values = dict(ctx.request["values"])
    now = utcnow()
    with ctx.engine.begin() as conn:
        check_create(conn, rtype, values)
        if rtype.object_type in INITIAL_STATE:
            values["state"] = INITIAL_STATE[rtype.object_type]
        try:
            conn.execute(
                insert(rtype.table).values(id=ctx.object_id, created_at=now, updated_at=now, **values)
            )
        except IntegrityError as err:
            raise _integrity(rtype, err) from None
        if rtype.after_create:
            rtype.after_create(ctx, conn, str(ctx.object_id))
        ctx.event(conn, f"{rtype.object_type}.created", f"{rtype.label} {values['name']!r} created")
    return {"id": ctx.object_id, "href": f"/api/v1/{rtype.path}/{ctx.object_id}"}


def _update(ctx: jobs.JobContext) -> dict[str, Any]:
    rtype = TYPES[ctx.object_type or ""]
    values = dict(ctx.request["values"])
    assert ctx.object_id is not None
    with ctx.engine.begin() as conn:
        row = check_update(conn, rtype, ctx.object_id, values)
        if rtype.before_update:
            rtype.before_update(ctx, conn, ctx.object_id, values)
        try:
            conn.execute(
                update(rtype.table)
                .where(rtype.table.c.id == ctx.object_id)
                .values(updated_at=utcnow(), **values)
            )
        except IntegrityError as err:
            raise _integrity(rtype, err) from None
        changed = ", ".join(sorted(k.replace("password_hash", "password") for k in values))
        ctx.event(conn, f"{rtype.object_type}.updated", f"{rtype.label} {row['name']!r} updated: {changed}")
    return {"id": ctx.object_id, "href": f"/api/v1/{rtype.path}/{ctx.object_id}"}


def _delete(ctx: jobs.JobContext) -> dict[str, Any]:
    rtype = TYPES[ctx.object_type or ""]
    assert ctx.object_id is not None
    with ctx.engine.begin() as conn:
        row = check_delete(conn, rtype, ctx.object_id)
        if rtype.before_delete:
            rtype.before_delete(ctx, conn, ctx.object_id)
        conn.execute(delete(rtype.table).where(rtype.table.c.id == ctx.object_id))
        ctx.event(conn, f"{rtype.object_type}.deleted", f"{rtype.label} {row['name']!r} deleted")
    return {"id": ctx.object_id}


for _kind, _fn in (("create", _create), ("update", _update), ("delete", _delete)):
    jobs.handler(f"object.{_kind}")(_fn)
