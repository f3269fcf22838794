"""/statistics: time series per server and VM; agents ingest samples in batches."""

import time
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request

from appliance.manager import statistics
from appliance.manager.api.auth import Principal, require, require_agent
from appliance.manager.api.common import runtime
from appliance.manager.api.responses import JSON
from appliance.manager.models import Samples
from appliance.manager.problems import Invalid

router = APIRouter(prefix="/statistics", tags=["statistics"])
Epoch = Annotated[float | None, Query(ge=0, le=32_503_680_000, description="unix seconds")]


@router.get("", summary="A time series; ?resolution=auto picks raw, 300 or 3600 s from the range")
def get_series(
    request: Request,
    object_type: Annotated[str, Query(pattern="^(server|vm)$")],
    object_id: Annotated[str, Query(min_length=1, max_length=36)],
    metric: Annotated[str, Query(min_length=1, max_length=32, pattern="^[a-z0-9_]+$")],
    start: Epoch = None,
    end: Epoch = None,
    resolution: Annotated[str, Query(pattern="^(auto|raw|300|3600)$")] = "auto",
    _: Principal = Depends(require("readonly")),
) -> JSON:
    now = time.time()
    end = now if end is None else end
    start = end - 3600 if start is None else start
    if start > end:
        raise Invalid("start is after end", "give start <= end (unix seconds)")
    if resolution == "auto":
        res = statistics.choose_resolution(start, now, statistics.Retention())
    else:
        res = 0 if resolution == "raw" else int(resolution)
    with runtime(request).reader.connect() as conn:
        points = statistics.series(
            conn,
            object_type=object_type,
            object_id=object_id,
            metric=metric,
            start=start,
            end=end,
            resolution=res,
        )
    return JSON(
        {
            "object_type": object_type,
            "object_id": object_id,
            "metric": metric,
            "start": start,
            "end": end,
            "resolution": "raw" if res == 0 else res,
            "points": points,
        }
    )


@router.post(
    "/ingest", status_code=202, summary="Agents push samples (idempotent by object, metric and time)"
)
def ingest_samples(
    request: Request, body: Annotated[Samples, Body()], _: Principal = Depends(require_agent)
) -> JSON:
    with runtime(request).engine.begin() as conn:
        accepted = statistics.ingest(conn, (s.model_dump() for s in body.samples))
    return JSON({"accepted": accepted}, status_code=202)
