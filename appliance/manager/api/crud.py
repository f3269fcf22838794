"""List, get, create, update and delete routes for each managed object type.

(No ``from __future__ import annotations`` here: FastAPI reads the closures' annotations at runtime.)
"""

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy import and_, func, select

from appliance.manager import resources
from appliance.manager.api.auth import Principal, require
from appliance.manager.api.common import JOB_RESPONSES, Limit, Offset, Wait, page_body, runtime, submit_job
from appliance.manager.api.responses import JSON
from appliance.manager.resources import ResourceType

IdPath = Annotated[str, Path(min_length=1, max_length=64)]
Prepare = Callable[[dict[str, Any]], dict[str, Any]]


def _filters_dependency(rtype: ResourceType) -> Callable[..., dict[str, Any]]:
    """A dependency whose signature declares one optional query parameter per filterable column."""

    def collect(**kwargs: Any) -> dict[str, Any]:
        return {k: v for k, v in kwargs.items() if v is not None}

    params = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=Query(None, max_length=255, description=f"only {rtype.path} whose {name} equals this"),
            annotation=str | None,
        )
        for name in rtype.filters
    ]
    collect.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return collect


def crud_router(
    rtype: ResourceType,
    create_model: type[BaseModel],
    update_model: type[BaseModel],
    *,
    read_role: str = "readonly",
    prepare_create: Prepare | None = None,
    prepare_update: Prepare | None = None,
    creatable: bool = True,
) -> APIRouter:
    router = APIRouter(prefix=f"/{rtype.path}", tags=[rtype.path])
    table = rtype.table
    reader = Depends(require(read_role))
    writer = Depends(require("admin"))
    filters_dep = Depends(_filters_dependency(rtype))

    @router.get("", summary=f"List {rtype.path}")
    def list_objects(
        request: Request,
        limit: Limit = 100,
        offset: Offset = 0,
        filters: dict = filters_dep,
        _: Principal = reader,
    ) -> JSON:
        where = and_(*(table.c[k] == v for k, v in filters.items()))
        # Deferred join: page through the name index alone, then fetch only the page's rows (no filesort).
        page = select(table.c.id).where(where).order_by(table.c.name).limit(limit).offset(offset).subquery()
        query = select(table).join(page, table.c.id == page.c.id).order_by(table.c.name)
        with runtime(request).reader.connect() as conn:
            items = [rtype.to_json(r) for r in conn.execute(query).mappings()]
            total = conn.execute(select(func.count()).select_from(table).where(where)).scalar_one()
        return JSON(page_body(items, total, limit, offset))

    @router.get("/{object_id}", summary=f"Get one {rtype.label}")
    def get_object(request: Request, object_id: IdPath, _: Principal = reader) -> JSON:
        with runtime(request).reader.connect() as conn:
            return JSON(rtype.to_json(resources.fetch(conn, rtype, object_id)))

    def create_object(
        request: Request,
        body: Annotated[create_model, Body()],  # type: ignore[valid-type]
        wait: Wait = 0,
        principal: Principal = writer,
    ) -> JSON:
        values = body.model_dump()  # type: ignore[attr-defined]
        if prepare_create:
            values = prepare_create(values)
        object_id = resources.new_id()
        with runtime(request).engine.connect() as conn:
            resources.check_create(conn, rtype, values)
            return submit_job(
                request,
                principal,
                kind="object.create",
                summary=f"create {rtype.label} {values['name']}",
                payload={"values": values},
                object_type=rtype.object_type,
                object_id=object_id,
                conn=conn,
                wait=wait,
            )

    if creatable:
        summary = f"Create a {rtype.label} (a job)"
        router.post("", status_code=202, responses=JOB_RESPONSES, summary=summary)(create_object)

    @router.patch(
        "/{object_id}", status_code=202, responses=JOB_RESPONSES, summary=f"Change a {rtype.label} (a job)"
    )
    def update_object(
        request: Request,
        object_id: IdPath,
        body: Annotated[update_model, Body()],  # type: ignore[valid-type]
        wait: Wait = 0,
        principal: Principal = writer,
    ) -> JSON:
        values = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
        if prepare_update:
            values = prepare_update(values)
        with runtime(request).engine.connect() as conn:
            row = resources.check_update(conn, rtype, object_id, values)
            return submit_job(
                request,
                principal,
                kind="object.update",
                summary=f"update {rtype.label} {row['name']}",
                payload={"values": values},
                object_type=rtype.object_type,
                object_id=object_id,
                conn=conn,
                wait=wait,
            )

    @router.delete(
        "/{object_id}", status_code=202, responses=JOB_RESPONSES, summary=f"Delete a {rtype.label} (a job)"
    )
    def delete_object(
        request: Request, object_id: IdPath, wait: Wait = 0, principal: Principal = writer
    ) -> JSON:
        with runtime(request).engine.connect() as conn:
            row = resources.check_delete(conn, rtype, object_id)
            if rtype is resources.USER and row["id"] == principal.user_id:
                from appliance.manager.problems import Conflict

                raise Conflict("you cannot delete the user you are logged in as", "log in as another admin")
            return submit_job(
                request,
                principal,
                kind="object.delete",
                summary=f"delete {rtype.label} {row['name']}",
                payload={},
                object_type=rtype.object_type,
                object_id=object_id,
                conn=conn,
                wait=wait,
            )

    return router
