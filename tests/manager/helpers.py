"""Small helpers for WS-API tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def finished_job(client: httpx.Client, response: httpx.Response, timeout: float = 30) -> dict[str, Any]:
    """The job a 202 answer started, once it has finished."""
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/api/v1/jobs/{response.json()['id']}"
    job = client.get(f"/jobs/{response.json()['id']}", params={"wait": timeout}).json()
    assert job["state"] in ("succeeded", "failed", "aborted"), job
    return job


def create(client: httpx.Client, path: str, body: dict[str, Any]) -> str:
    job = finished_job(client, client.post(f"/{path}", json=body))
    assert job["state"] == "succeeded", job
    return str(job["result"]["id"])


def error_of(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]
