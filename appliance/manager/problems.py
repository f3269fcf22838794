"""Errors of the manager's domain, each with the HTTP status and code the WS-API answers with."""

from __future__ import annotations

from appliance.errors import ApplianceError


class ManagerProblem(ApplianceError):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, hint: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message, hint)
        if code:
            self.code = code


class Invalid(ManagerProblem):
    status, code = 400, "invalid_request"


class Unauthorized(ManagerProblem):
    status, code = 401, "unauthorized"


class Forbidden(ManagerProblem):
    status, code = 403, "forbidden"


class NotFound(ManagerProblem):
    status, code = 404, "not_found"


class Conflict(ManagerProblem):
    status, code = 409, "conflict"


class TooLarge(ManagerProblem):
    status, code = 413, "payload_too_large"


class Unavailable(ManagerProblem):
    status, code = 503, "unavailable"
