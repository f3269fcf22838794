"""/jobs: every change the manager makes, with state, progress, result or error."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import and_, func, select

from appliance.manager import jobs
from appliance.manager.api.auth import Principal, require
from appliance.manager.api.common import Limit, Offset, Wait, page_body, runtime
from appliance.manager.api.responses import JSON
from appliance.manager.problems import Conflict, NotFound
from appliance.manager.schema import jobs as jobs_table

router = APIRouter(prefix="/jobs", tags=["jobs"])
JobId = Annotated[int, Path(ge=1, le=2**62)]
State = Annotated[str | None, Query(pattern="^(queued|running|succeeded|failed|aborted)$")]


def _get(request: Request, job_id: int) -> JSON:
    with runtime(request).reader.connect() as conn:
        row = jobs.get(conn, job_id)
    if row is None:
        raise NotFound(f"no job with id {job_id}", "list jobs with GET /api/v1/jobs")
    return JSON(jobs.to_json(row))


@router.get("", summary="List jobs, newest first")
def list_jobs(
    request: Request,
    limit: Limit = 100,
    offset: Offset = 0,
    state: State = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    _: Principal = Depends(require("readonly")),
) -> JSON:
    t = jobs_table.c
    conds = [c == v for c, v in ((t.state, state), (t.object_id, object_id), (t.kind, kind)) if v is not None]
    where = and_(*conds)
    with runtime(request).reader.connect() as conn:
        rows = conn.execute(
            select(jobs_table).where(where).order_by(t.id.desc()).limit(limit).offset(offset)
        ).mappings()
        items = [jobs.to_json(r) for r in rows]
        total = conn.execute(select(func.count()).select_from(jobs_table).where(where)).scalar_one()
    return JSON(page_body(items, total, limit, offset))


@router.get("/{job_id}", summary="Get a job; ?wait=N waits up to N seconds for it to finish")
def get_job(
    request: Request, job_id: JobId, wait: Wait = 0, _: Principal = Depends(require("readonly"))
) -> JSON:
    if wait > 0:
        runtime(request).runner.wait_finished(job_id, wait)
    return _get(request, job_id)


@router.post("/{job_id}/abort", status_code=202, summary="Abort a queued job, or ask a running one to stop")
def abort_job(request: Request, job_id: JobId, _: Principal = Depends(require("admin"))) -> JSON:
    with runtime(request).engine.begin() as conn:
        row = jobs.get(conn, job_id)
        if row is None:
            raise NotFound(f"no job with id {job_id}", "list jobs with GET /api/v1/jobs")
        if row["state"] in jobs.FINISHED:
            raise Conflict(
                f"job {job_id} has already {row['state']}", "only queued or running jobs can be aborted"
            )
        jobs.request_abort(conn, job_id)
    response = _get(request, job_id)
    response.status_code = 202
    return response
