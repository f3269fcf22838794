"""The GUI's only way to the manager: the public WS-API over HTTPS, with the user's own bearer token."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


class ApiError(Exception):
    """An error answer of the WS-API ({"error": {"code", "message"}}) or a failure to reach it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
            err = body["error"]
            return cls(response.status_code, str(err["code"]), str(err["message"]))
        except (ValueError, KeyError, TypeError):
            text = response.text.strip()[:300] or response.reason_phrase
            return cls(response.status_code, "http_error", f"HTTP {response.status_code}: {text}")


@dataclass(frozen=True)
class Job:
    """A job as the WS-API returns it, with the fields the GUI shows."""

    data: dict[str, Any]

    @property
    def id(self) -> int:
        return int(self.data["id"])

    @property
    def state(self) -> str:
        return str(self.data["state"])

    @property
    def summary(self) -> str:
        return str(self.data.get("summary", ""))

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed", "aborted")

    @property
    def error_message(self) -> str:
        err = self.data.get("error") or {}
        return str(err.get("message") or f"job {self.id} {self.state}")

    @property
    def result(self) -> dict[str, Any]:
        return dict(self.data.get("result") or {})


class WsApi:
    """An HTTPS client for one manager's WS-API; every call carries the caller's token."""

    def __init__(self, base: str | None, ca_file: Path, timeout: float = 60.0) -> None:
        self.base = base.rstrip("/") if base else ""
        self.ca_file = ca_file
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        # Made on first use, inside the server's event loop.
        if not self.base:
            raise ApiError(502, "api_unknown", "the GUI does not know the WS-API's address yet")
        if self._client is None:
            ctx = ssl.create_default_context(cafile=str(self.ca_file))
            # No idle keep-alive connections to our own listener: at shutdown the server closes
            # idle TLS connections and waits for the peer's close_notify, which an idle pool in
            # the same event loop never sends (the manager would hang for ssl_shutdown_timeout).
            limits = httpx.Limits(max_keepalive_connections=0)
            self._client = httpx.AsyncClient(
                base_url=self.base, verify=ctx, timeout=self.timeout, limits=limits
            )
        return self._client

    def _unreachable(self, err: httpx.HTTPError) -> ApiError:
        return ApiError(
            502,
            "api_unreachable",
            f"the GUI could not reach the WS-API at {self.base}: {type(err).__name__}: {err} "
            "(check that the manager is running and its --listen address)",
        )

    async def call(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """The decoded JSON answer (None for 204); raises ApiError for any 4xx/5xx."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        try:
            response = await self.client().request(method, path, headers=headers, json=json, params=clean)
        except httpx.HTTPError as err:
            raise self._unreachable(err) from None
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def get(self, path: str, token: str, **params: Any) -> Any:
        return await self.call("GET", path, token, params=params)

    async def job(self, method: str, path: str, token: str, *, json: Any = None, wait: float = 0.0) -> Job:
        """Start a change (the WS-API answers 202 with its job), waiting up to ``wait`` s for it."""
        params = {"wait": wait} if wait > 0 else None
        return Job(await self.call(method, path, token, json=json, params=params))

    async def login(self, username: str, password: str) -> dict[str, Any]:
        body = await self.call("POST", "/sessions", None, json={"username": username, "password": password})
        return dict(body)

    async def has_path(self, token: str, method: str, path: str) -> bool:
        """Whether this manager's OpenAPI document lists ``method path`` (for features still to come)."""
        doc = await self.get("/openapi.json", token)
        return method.lower() in doc.get("paths", {}).get(f"/api/v1{path}", {})

    @asynccontextmanager
    async def stream(self, token: str, last_event_id: str | None) -> AsyncIterator[httpx.Response]:
        """The manager's Server-Sent Events stream, resumed after ``last_event_id``."""
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        timeout = httpx.Timeout(self.timeout, read=60.0)
        try:
            async with self.client().stream("GET", "/events/stream", headers=headers, timeout=timeout) as r:
                if r.status_code >= 400:
                    await r.aread()
                    raise ApiError.from_response(r)
                yield r
        except httpx.HTTPError as err:
            raise self._unreachable(err) from None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
