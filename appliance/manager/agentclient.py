"""XML-RPC client for server agents (port 8899), always over TLS with the agent's certificate pinned.

Before ownership the manager logs in as `oracle` with the agent password; after, it presents its
client certificate (CN = manager UUID, issued by the manager CA). The agent's own certificate is
pinned by its SHA-256 fingerprint, recorded at discovery or enrollment: never "accept any".
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from appliance import pki
from appliance.manager.problems import (
    Conflict,
    Forbidden,
    Invalid,
    ManagerProblem,
    NotFound,
    Unauthorized,
    Unavailable,
)

AGENT_USER = "oracle"
# Fault codes of the agent (appliance/server/rpcproto.py).
_FAULTS: dict[int, type[ManagerProblem]] = {
    1: NotFound,
    2: Conflict,
    3: Unavailable,
    4: Forbidden,
    5: Invalid,
    -32602: Invalid,
    -32601: NotFound,
}


@dataclass(frozen=True)
class AgentAddress:
    host: str
    port: int = 8899

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}/RPC2"


def fetch_certificate(addr: AgentAddress, timeout: float = 10.0) -> x509.Certificate:
    """The agent's TLS certificate as it presents it (to be pinned by its fingerprint)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((addr.host, addr.port), timeout=timeout) as raw,
            ctx.wrap_socket(raw) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError as err:
        raise Unavailable(
            f"cannot reach the agent at {addr.host}:{addr.port}: {err}",
            "check the address, that the agent runs, and that port 8899 is open",
        ) from None
    assert der is not None
    return x509.load_der_x509_certificate(der)


class _PinnedConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, *, fingerprint: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self.pinned = fingerprint

    def connect(self) -> None:
        super().connect()
        der = self.sock.getpeercert(binary_form=True)
        seen = pki.fingerprint(x509.load_der_x509_certificate(der)) if der else "none"
        if seen != self.pinned:
            self.close()
            raise ssl.SSLError(f"the agent's certificate fingerprint is {seen}, expected {self.pinned}")


class _PinnedTransport(xmlrpc.client.SafeTransport):
    def __init__(self, context: ssl.SSLContext, fingerprint: str, timeout: float, auth: str | None) -> None:
        super().__init__(context=context)
        self._context = context
        self._fingerprint, self._timeout, self._auth = fingerprint, timeout, auth

    def make_connection(self, host: Any) -> http.client.HTTPSConnection:
        chost, self._extra_headers, _ = self.get_host_info(host)
        self._connection = (
            host,
            _PinnedConnection(
                chost,
                fingerprint=self._fingerprint,
                context=self._context,
                timeout=self._timeout,
            ),
        )
        return self._connection[1]

    def send_headers(self, connection: http.client.HTTPConnection, headers: list[tuple[str, str]]) -> None:
        if self._auth:
            headers = [*headers, ("Authorization", f"Basic {self._auth}")]
        super().send_headers(connection, headers)


class AgentClient:
    """Calls verbs on one agent; errors become ManagerProblems with the agent's own message."""

    def __init__(
        self,
        addr: AgentAddress,
        fingerprint: str,
        *,
        password: str | None = None,
        client_cert: tuple[Path, Path] | None = None,
        timeout: float = 30.0,
    ) -> None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = (
            ssl.CERT_NONE
        )  # the agent's certificate is checked by its pinned fingerprint instead
        if client_cert:
            ctx.load_cert_chain(*client_cert)
        auth = (
            base64.b64encode(f"{AGENT_USER}:{password}".encode()).decode() if password is not None else None
        )
        self.addr = addr
        self.password_login = password is not None
        self._proxy = xmlrpc.client.ServerProxy(
            addr.url, transport=_PinnedTransport(ctx, fingerprint, timeout, auth), allow_none=True
        )

    def call(self, verb: str, *args: Any) -> Any:
        where = f"agent {self.addr.host}:{self.addr.port}"
        try:
            return getattr(self._proxy, verb)(*args)
        except xmlrpc.client.Fault as fault:
            cls = _FAULTS.get(fault.faultCode, ManagerProblem)
            raise cls(f"{where} refused {verb}: {fault.faultString}") from None
        except xmlrpc.client.ProtocolError as err:
            if err.errcode in (401, 403):
                raise Unauthorized(
                    f"{where} refused the login ({err.errcode} {err.errmsg})",
                    "check the agent password, or whether another manager owns the server",
                ) from None
            raise Unavailable(f"{where} answered HTTP {err.errcode} {err.errmsg}") from None
        except ssl.SSLError as err:
            if self.password_login or "CERTIFICATE_UNKNOWN" in str(err) or "UNKNOWN_CA" in str(err):
                # An agent only demands (or rejects) client certificates while a manager owns it.
                raise Forbidden(
                    f"{where} refused this manager's credentials: it is owned by another manager ({err.reason})",
                    "release the server from the manager that owns it first",
                ) from None
            raise Forbidden(
                f"TLS with {where} failed: {err}", "if the server was reinstalled, discover it again"
            ) from None
        except OSError as err:
            raise Unavailable(
                f"cannot reach {where}: {err}", "check that the agent runs and port 8899 is open"
            ) from None
