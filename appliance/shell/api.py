"""A small, synchronous WS-API client: HTTPS with the manager CA, a bearer session, JSON errors as exceptions."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from appliance.errors import ApplianceError

API_PREFIX = "/api/v1"


class CommandError(ApplianceError):
    """A command failed; ``code`` is machine-readable, ``exit_code`` 2 for usage errors, 1 otherwise."""

    def __init__(self, message: str, hint: str | None = None, *, code: str = "failed", usage: bool = False):
        super().__init__(message, hint)
        self.code = code
        self.exit_code = 2 if usage else 1

    def as_json(self) -> dict[str, Any]:
        message = self.message + (f" (hint: {self.hint})" if self.hint else "")
        return {"error": {"code": self.code, "message": message}}


class ApiError(CommandError):
    """The WS-API answered with an error (``status`` is the HTTP status, 0 if it could not be reached)."""

    def __init__(self, status: int, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint, code=code)
        self.status = status


def base_url(manager: str) -> str:
    """``https://host:7002`` or ``https://host:7002/api/v1`` -> the API's base URL."""
    url = manager.rstrip("/")
    if not url.startswith(("https://", "http://")):
        url = "https://" + url
    return url if url.endswith(API_PREFIX) else url + API_PREFIX


def ca_context(ca_file: Path) -> ssl.SSLContext:
    if not ca_file.is_file():
        raise CommandError(
            f"the manager CA certificate {ca_file} does not exist",
            "pass --ca FILE (the manager's STATE_DIR/tls/ca.crt) or --state-dir DIR",
            code="no_ca",
            usage=True,
        )
    return ssl.create_default_context(cafile=str(ca_file))


def _error_from(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        err = body["error"]
        return ApiError(response.status_code, str(err["code"]), str(err["message"]))
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:200] or response.reason_phrase
        return ApiError(response.status_code, "http_error", f"HTTP {response.status_code}: {text}")


class WsApi:
    """One user's connection to the WS-API. ``login`` gets a bearer token; ``logout`` ends it."""

    def __init__(self, url: str, tls: ssl.SSLContext, *, timeout: float = 30.0) -> None:
        self.url = base_url(url)
        self.timeout = timeout
        self.http = httpx.Client(base_url=self.url, verify=tls, timeout=timeout)
        self.session_id: str | None = None
        self.user: str | None = None
        self.role: str | None = None
        self._openapi: dict[str, Any] | None = None

    def login(self, username: str, password: str) -> None:
        body = self.request("POST", "/sessions", json={"username": username, "password": password})
        self.http.headers["Authorization"] = f"Bearer {body['token']}"
        self.session_id, self.user, self.role = body["id"], body["user"], body["role"]

    def key_login(self, username: str, public_key: str) -> None:
        """A session for a user whose SSH key the caller verified; only the manager's SSH front end,
        holding its companion certificate, may do this."""
        body = self.request("POST", "/sessions", json={"username": username, "ssh_public_key": public_key})
        self.http.headers["Authorization"] = f"Bearer {body['token']}"
        self.session_id, self.user, self.role = body["id"], body["user"], body["role"]

    def logout(self) -> None:
        if self.session_id:
            try:
                self.request("DELETE", f"/sessions/{self.session_id}")
            except ApiError:
                pass  # expired or the manager is gone: nothing left to end
            self.session_id = None
            self.http.headers.pop("Authorization", None)

    def close(self) -> None:
        self.logout()
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        wait: float = 0.0,
    ) -> Any:
        """Call the API; answers its JSON body (None for 204); raises ApiError for every failure."""
        params = dict(params or {})
        if wait > 0:
            params["wait"] = wait
        try:
            response = self.http.request(
                method, path, params=params, json=json, timeout=self.timeout + wait if wait else self.timeout
            )
        except httpx.ConnectError as err:
            if "CERTIFICATE_VERIFY_FAILED" in str(err):
                raise ApiError(
                    0,
                    "tls_error",
                    f"the manager at {self.url} has a certificate our CA file does not trust",
                    "use the manager's own CA (STATE_DIR/tls/ca.crt); compare `showCaFingerprint`",
                ) from None
            raise ApiError(
                0,
                "unreachable",
                f"cannot reach the manager at {self.url}: {err}",
                "check that `appliance manager serve` runs and the URL is right",
            ) from None
        except httpx.TimeoutException:
            raise ApiError(
                0, "timeout", f"the manager at {self.url} did not answer in time", "try again"
            ) from None
        except httpx.HTTPError as err:
            raise ApiError(0, "http_error", f"talking to {self.url} failed: {err}", "try again") from None
        if response.status_code >= 400:
            raise _error_from(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                response.status_code, "bad_answer", f"{method} {path} did not answer JSON", None
            ) from None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def openapi(self) -> dict[str, Any]:
        """The live manager's OpenAPI document (fetched once per session)."""
        if self._openapi is None:
            self._openapi = self.get("/openapi.json")
        return self._openapi
