"""Server actions beyond plain records: discovery by agent password, release."""

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request
from sqlalchemy import select

from appliance.manager import resources
from appliance.manager.api.auth import Principal, require
from appliance.manager.api.common import JOB_RESPONSES, Wait, runtime, submit_job
from appliance.manager.api.crud import IdPath
from appliance.manager.api.responses import JSON
from appliance.manager.models import Release, ServerCreate
from appliance.manager.problems import Conflict
from appliance.manager.schema import servers

router = APIRouter(prefix="/servers", tags=["servers"])


@router.post(
    "",
    status_code=202,
    responses=JOB_RESPONSES,
    summary="Discover a server with its agent password and take ownership (a job); without a password, "
    "register its address only",
)
def create_server(
    request: Request,
    body: Annotated[ServerCreate, Body()],
    wait: Wait = 0,
    principal: Principal = Depends(require("admin")),
) -> JSON:
    rt = runtime(request)
    values = body.model_dump(exclude={"agent_password"})
    if body.agent_password is None:
        values = {**values, "name": values.get("name") or values["address"]}
        with rt.engine.connect() as conn:
            resources.check_create(conn, resources.SERVER, values)
            return submit_job(
                request,
                principal,
                kind="object.create",
                summary=f"register server {values['name']}",
                payload={"values": values},
                object_type="server",
                object_id=resources.new_id(),
                conn=conn,
                wait=wait,
            )
    with rt.engine.connect() as conn:
        resources.check_references(conn, resources.SERVER, values)
        if body.name:
            owner = conn.execute(select(servers.c.address).where(servers.c.name == body.name)).scalar()
            if owner is not None and owner != body.address:
                raise Conflict(f"a server named {body.name!r} already exists", "choose another name")
    # The password stays in this process's memory only; the job row holds a reference to it.
    secret_ref = resources.new_id()
    rt.job_secrets[secret_ref] = body.agent_password
    return submit_job(
        request,
        principal,
        kind="server.discover",
        summary=f"discover server {body.address}",
        payload={**values, "secret_ref": secret_ref},
        object_type="server_discovery",
        object_id=body.address,
        wait=wait,
    )


@router.post(
    "/{object_id}/release",
    status_code=202,
    responses=JOB_RESPONSES,
    summary="Release a server: the agent forgets this manager, its certificates are revoked (a job)",
)
def release_server(
    request: Request,
    object_id: IdPath,
    body: Annotated[Release, Body()] = Release(),
    wait: Wait = 0,
    principal: Principal = Depends(require("admin")),
) -> JSON:
    with runtime(request).engine.connect() as conn:
        row = resources.fetch(conn, resources.SERVER, object_id)
        if row["state"] == "unowned":
            raise Conflict(f"server {row['name']} is not owned", "discover it first")
        return submit_job(
            request,
            principal,
            kind="server.release",
            summary=f"release server {row['name']}",
            payload={"force": body.force},
            object_type="server",
            object_id=object_id,
            conn=conn,
            wait=wait,
        )


@router.post(
    "/refresh-all",
    status_code=202,
    responses=JOB_RESPONSES,
    summary="Rebuild the manager's view of every owned server (and of servers its database lost) (a job)",
)
def refresh_all(request: Request, wait: Wait = 0, principal: Principal = Depends(require("admin"))) -> JSON:
    return submit_job(
        request,
        principal,
        kind="server.refresh_all",
        summary="refresh all servers",
        payload={},
        object_type="manager",
        object_id="refresh-all",
        wait=wait,
    )


@router.post(
    "/{object_id}/refresh",
    status_code=202,
    responses=JOB_RESPONSES,
    summary="Rebuild the manager's view of a server from its agent (a job)",
)
def refresh_server(
    request: Request, object_id: IdPath, wait: Wait = 0, principal: Principal = Depends(require("admin"))
) -> JSON:
    with runtime(request).engine.connect() as conn:
        row = resources.fetch(conn, resources.SERVER, object_id)
        if row["state"] == "unowned":
            raise Conflict(f"server {row['name']} is not owned", "discover it first")
        return submit_job(
            request,
            principal,
            kind="server.refresh",
            summary=f"refresh server {row['name']}",
            payload={},
            object_type="server",
            object_id=object_id,
            conn=conn,
            wait=wait,
        )
