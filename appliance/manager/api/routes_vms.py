"""VM actions on their servers: start and stop (jobs that call the owning agent)."""

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request

from appliance.manager import resources
from appliance.manager.api.auth import Principal, require
from appliance.manager.api.common import JOB_RESPONSES, Wait, runtime, submit_job
from appliance.manager.api.crud import IdPath
from appliance.manager.api.responses import JSON
from appliance.manager.models import VmStart, VmStop
from appliance.manager.problems import Conflict

router = APIRouter(prefix="/vms", tags=["vms"])


@router.post(
    "/{object_id}/start",
    status_code=202,
    responses=JOB_RESPONSES,
    summary="Start a VM on its server (or on ?server_id, or the least loaded owned server) (a job)",
)
def start_vm(
    request: Request,
    object_id: IdPath,
    body: Annotated[VmStart, Body()] = VmStart(),
    wait: Wait = 0,
    principal: Principal = Depends(require("admin")),
) -> JSON:
    with runtime(request).engine.connect() as conn:
        vm = resources.fetch(conn, resources.VM, object_id)
        if vm["state"] == "running":
            raise Conflict(f"VM {vm['name']} is already running", "nothing to do")
        resources.check_references(conn, resources.VM, body.model_dump())
        return submit_job(
            request,
            principal,
            kind="vm.start",
            summary=f"start VM {vm['name']}",
            payload=body.model_dump(),
            object_type="vm",
            object_id=object_id,
            conn=conn,
            wait=wait,
        )


@router.post(
    "/{object_id}/stop",
    status_code=202,
    responses=JOB_RESPONSES,
    summary="Stop a VM: a clean shutdown, or with force=true a hard power-off (a job)",
)
def stop_vm(
    request: Request,
    object_id: IdPath,
    body: Annotated[VmStop, Body()] = VmStop(),
    wait: Wait = 0,
    principal: Principal = Depends(require("admin")),
) -> JSON:
    with runtime(request).engine.connect() as conn:
        vm = resources.fetch(conn, resources.VM, object_id)
        if vm["state"] == "stopped" or not vm["server_id"]:
            raise Conflict(f"VM {vm['name']} is not running", "nothing to do")
        verb = "kill" if body.force else "stop"
        return submit_job(
            request,
            principal,
            kind="vm.stop",
            summary=f"{verb} VM {vm['name']}",
            payload=body.model_dump(),
            object_type="vm",
            object_id=object_id,
            conn=conn,
            wait=wait,
        )
