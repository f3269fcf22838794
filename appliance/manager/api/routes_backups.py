"""/backups: list, take one now (a job), delete (a job), and the schedule settings."""

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request

from appliance.manager import backups, jobs, migrate
from appliance.manager.api.auth import Principal, require
from appliance.manager.api.common import JOB_RESPONSES, Wait, runtime, submit_job
from appliance.manager.api.responses import JSON
from appliance.manager.models import BackupConfig
from appliance.manager.runtime import ManagerRuntime

router = APIRouter(prefix="/backups", tags=["backups"])
BackupId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", summary="Backups, newest first")
def list_backups(request: Request, _: Principal = Depends(require("readonly"))) -> JSON:
    items = [asdict(b) for b in backups.list_backups(runtime(request).paths.backups)]
    return JSON({"items": items, "total": len(items)})


@router.get("/config", summary="The backup schedule")
def get_config(request: Request, _: Principal = Depends(require("readonly"))) -> JSON:
    with runtime(request).reader.connect() as conn:
        return JSON(backups.read_config(conn))


@router.put("/config", status_code=202, responses=JOB_RESPONSES, summary="Change the backup schedule (a job)")
def put_config(
    request: Request,
    body: Annotated[BackupConfig, Body()],
    wait: Wait = 0,
    principal: Principal = Depends(require("admin")),
) -> JSON:
    return submit_job(
        request,
        principal,
        kind="backup.configure",
        summary="change the backup schedule",
        payload=body.model_dump(),
        object_type="backup_config",
        object_id="backup_config",
        wait=wait,
    )


@router.get("/{backup_id}", summary="One backup")
def get_backup(request: Request, backup_id: BackupId, _: Principal = Depends(require("readonly"))) -> JSON:
    return JSON(asdict(backups.get(runtime(request).paths.backups, backup_id)))


@router.post("", status_code=202, responses=JOB_RESPONSES, summary="Take a backup now (a job)")
def create_backup(request: Request, wait: Wait = 0, principal: Principal = Depends(require("admin"))) -> JSON:
    return submit_job(
        request,
        principal,
        kind="backup.create",
        summary="back up the database",
        payload={"kind": "manual"},
        object_type="backup",
        object_id="database",
        wait=wait,
    )


@router.delete("/{backup_id}", status_code=202, responses=JOB_RESPONSES, summary="Delete a backup (a job)")
def delete_backup(
    request: Request, backup_id: BackupId, wait: Wait = 0, principal: Principal = Depends(require("admin"))
) -> JSON:
    backups.get(runtime(request).paths.backups, backup_id)
    return submit_job(
        request,
        principal,
        kind="backup.delete",
        summary=f"delete backup {backup_id}",
        payload={"backup_id": backup_id},
        object_type="backup",
        object_id="database",
        wait=wait,
    )


def run_backup(rt: ManagerRuntime, kind: str) -> backups.BackupInfo:
    info = backups.create(rt.paths.backups, rt.config.database, kind, migrate.current_revision(rt.engine))
    if kind == "auto":
        with rt.reader.connect() as conn:
            keep = backups.read_config(conn)["keep"]
        backups.prune(rt.paths.backups, keep)
    return info


@jobs.handler("backup.create")
def _create(ctx: jobs.JobContext) -> dict:
    info = run_backup(ctx.services, ctx.request.get("kind", "manual"))
    with ctx.engine.begin() as conn:
        ctx.event(
            conn,
            "backup.created",
            f"backup {info.id} taken ({info.size_bytes} bytes, sha256 {info.sha256[:12]}…)",
        )
    return asdict(info)


@jobs.handler("backup.delete")
def _delete(ctx: jobs.JobContext) -> dict:
    backup_id = ctx.request["backup_id"]
    backups.remove(ctx.services.paths.backups, backup_id)
    with ctx.engine.begin() as conn:
        ctx.event(conn, "backup.deleted", f"backup {backup_id} deleted")
    return {"id": backup_id}


@jobs.handler("backup.configure")
def _configure(ctx: jobs.JobContext) -> dict:
    config = BackupConfig(**ctx.request).model_dump()
    with ctx.engine.begin() as conn:
        backups.write_config(conn, config)
        ctx.event(
            conn,
            "backup.configured",
            f"backups every {config['interval_minutes']} min, keep {config['keep']}",
        )
    return config
