"""Who is calling: a user (HTTP Basic or a bearer session token) or an agent (its client certificate).

An agent's identity comes from its certificate (issued by the manager CA, CN = server id), never from
the request body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID
from fastapi import Request
from sqlalchemy import select
from sqlalchemy.engine import Engine

from appliance.manager.passwords import verify_password
from appliance.manager.problems import Forbidden, Unauthorized
from appliance.manager.schema import sessions, users
from appliance.manager.timeutil import utcnow

ROLES = ("readonly", "admin")  # each role can do what the ones before it can


@dataclass(frozen=True)
class Principal:
    kind: str  # "user" or "agent"
    name: str
    role: str
    user_id: str | None = None
    server_id: str | None = None
    session_id: str | None = None

    def allows(self, role: str) -> bool:
        return self.kind == "user" and ROLES.index(self.role) >= ROLES.index(role)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class _TTLCache:
    def __init__(self, ttl: float, size: int = 4096) -> None:
        self.ttl, self.size = ttl, size
        self._data: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Principal | None:
        with self._lock:
            hit = self._data.get(key)
            if hit and hit[0] > time.monotonic():
                return hit[1]
            self._data.pop(key, None)
            return None

    def put(self, key: str, value: Principal) -> None:
        with self._lock:
            if len(self._data) >= self.size:
                self._data.clear()
            self._data[key] = (time.monotonic() + self.ttl, value)

    def drop_session(self, session_id: str) -> None:
        with self._lock:
            for key in [k for k, (_, p) in self._data.items() if p.session_id == session_id]:
                del self._data[key]


class Authenticator:
    """Checks credentials; successful checks are cached briefly (argon2 is slow on purpose)."""

    def __init__(self, engine: Engine, cache_seconds: float = 10.0) -> None:
        self.engine = engine
        self.cache = _TTLCache(cache_seconds)
        self._refusals: dict[str, float] = {}
        self._refusals_lock = threading.Lock()

    def password_login(self, name: str, password: str) -> Principal:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        if row is None or not verify_password(row["password_hash"], password):
            raise Unauthorized("wrong user name or password", "check the credentials")
        return Principal("user", row["name"], row["role"], user_id=row["id"])

    def basic(self, header_value: str) -> Principal:
        try:
            decoded = base64.b64decode(header_value, validate=True).decode()
            name, _, password = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed HTTP Basic credentials", "send base64(user:password)") from None
        key = "basic:" + hashlib.sha256(decoded.encode()).hexdigest()
        cached = self.cache.get(key)
        if cached:
            return cached
        principal = self.password_login(name, password)
        self.cache.put(key, principal)
        return principal

    def bearer(self, token: str) -> Principal:
        key = "bearer:" + token_hash(token)
        cached = self.cache.get(key)
        if cached:
            return cached
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(
                        sessions.c.id,
                        sessions.c.expires_at,
                        users.c.id.label("user_id"),
                        users.c.name,
                        users.c.role,
                    )
                    .join(users, users.c.id == sessions.c.user_id)
                    .where(sessions.c.token_hash == token_hash(token))
                )
                .mappings()
                .first()
            )
        if row is None or row["expires_at"] <= utcnow():
            raise Unauthorized(
                "the session token is unknown or expired", "log in again with POST /api/v1/sessions"
            )
        principal = Principal("user", row["name"], row["role"], user_id=row["user_id"], session_id=row["id"])
        self.cache.put(key, principal)
        return principal

    def certificate(self, der: bytes) -> Principal:
        """An agent: the TLS layer verified the chain to our CA; here we check it is one we issued to
        that server and have not revoked (looked up on every request, so a revocation is immediate)."""
        from appliance.manager.trust import certificate_status

        cert = x509.load_der_x509_certificate(der)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not names:
            raise Unauthorized("the client certificate has no common name", "enrol the server again")
        server_id = str(names[0].value)
        with self.engine.connect() as conn:
            status = certificate_status(conn, cert)
        if status != "valid":
            self._log_refusal(cert, server_id, status)
            raise Unauthorized(
                f"the client certificate of server {server_id} is {status}",
                "enrol the server again (appliance agent enroll) or discover it with its agent password",
            )
        if server_id.startswith("companion:"):
            return Principal("companion", server_id, "companion")
        return Principal("agent", f"server:{server_id}", "agent", server_id=server_id)

    def _log_refusal(self, cert: x509.Certificate, server_id: str, status: str) -> None:
        """An event per refused certificate, at most once every 10 minutes each."""
        from appliance import pki
        from appliance.manager import events

        key = f"refused:{pki.serial_hex(cert)}"
        now = time.monotonic()
        with self._refusals_lock:
            if self._refusals.get(key, 0.0) > now:
                return
            self._refusals[key] = now + 600
        with self.engine.begin() as conn:
            events.record(
                conn,
                type="agent.certificate_refused",
                severity="warning",
                object_type="server",
                object_id=server_id[:64],
                message=f"refused a {status} client certificate (serial {pki.serial_hex(cert)}) "
                f"for server {server_id}",
            )


def peer_certificate(request: Request) -> bytes | None:
    tls = request.scope.get("extensions", {}).get("tls", {})
    der = tls.get("client_cert_der")
    return der if isinstance(der, bytes) else None


def authenticate(request: Request) -> Principal:
    auth: Authenticator = request.app.state.runtime.auth
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return auth.bearer(value.strip())
    if scheme.lower() == "basic" and value:
        return auth.basic(value.strip())
    der = peer_certificate(request)
    if der is not None:
        return auth.certificate(der)
    raise Unauthorized(
        "authentication required",
        "use HTTP Basic, a bearer token from POST /api/v1/sessions, or a client certificate",
    )


def require(role: str) -> Callable[[Request], Principal]:
    """FastAPI dependency: a user with at least ``role``."""

    def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        if not principal.allows(role):
            raise Forbidden(f"{principal.name} may not do this (needs the {role} role)", "ask an admin")
        return principal

    return dependency


def require_agent(request: Request) -> Principal:
    principal = authenticate(request)
    if principal.kind != "agent" and not principal.allows("admin"):
        raise Forbidden(
            "only agents (client certificate) and admins may push telemetry", "use the agent's certificate"
        )
    return principal
