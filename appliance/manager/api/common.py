"""Pieces every route module uses: paging, job acceptance, reading the runtime."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from sqlalchemy.engine import Connection

from appliance.manager import jobs
from appliance.manager.api.auth import Principal
from appliance.manager.api.responses import JSON
from appliance.manager.runtime import ManagerRuntime

Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="items to skip")]
Wait = Annotated[
    float, Query(ge=0, le=300, description="seconds to wait for the job to finish before answering")
]


def runtime(request: Request) -> ManagerRuntime:
    rt: ManagerRuntime = request.app.state.runtime
    return rt


def page_body(items: list[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def submit_job(
    request: Request,
    principal: Principal,
    *,
    kind: str,
    summary: str,
    payload: dict[str, Any],
    object_type: str | None = None,
    object_id: str | None = None,
    conn: Connection | None = None,
    wait: float = 0.0,
) -> JSON:
    """Queue a job (in ``conn``'s transaction if given) and answer 202 with it and its Location."""
    rt = runtime(request)
    args = dict(
        kind=kind,
        summary=summary,
        request=payload,
        created_by=principal.name,
        object_type=object_type,
        object_id=object_id,
    )
    if conn is not None:
        job_id = jobs.submit(conn, **args)  # type: ignore[arg-type]
        conn.commit()
    else:
        with rt.engine.begin() as own:
            job_id = jobs.submit(own, **args)  # type: ignore[arg-type]
    rt.runner.notify()
    if wait > 0:
        rt.runner.wait_finished(job_id, wait)
    with rt.engine.connect() as c:
        row = jobs.get(c, job_id)
    assert row is not None
    return JSON(jobs.to_json(row), status_code=202, headers={"Location": f"/api/v1/jobs/{job_id}"})


JOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "accepted: the job that carries out the change"}
}
