"""`appliance agent enroll`: trust exactly one manager from install time on.

The manager's CA is pinned by the SHA-256 fingerprint the user (or the kickstart) gives; a token
authorises the enrollment; the manager signs a CSR made with the agent's own TLS key and sends
back its UUID and where to push events and statistics.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from appliance import pki
from appliance.errors import ApplianceError, ConfigError, UsageError
from appliance.server import tls
from appliance.server.agent import open_state
from appliance.server.config import AgentConfig
from appliance.server.store import Ownership


class EnrollmentError(ApplianceError):
    pass


@dataclass(frozen=True)
class EnrollRequest:
    manager_url: str  # https://HOST:7002
    fingerprint: str
    token: str
    address: str | None = None  # how the manager reaches this agent (default: the local address toward it)
    agent_port: int = 8899
    hostname: str | None = None  # the installer names the new host (the live system's name is not it)


def _base(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url.rstrip("/"))
    if parts.scheme != "https" or not parts.hostname:
        raise UsageError(
            f"--manager must be an https:// URL, got {url!r}", "e.g. https://manager.example:7002"
        )
    return f"https://{parts.netloc}", parts.hostname, parts.port or 7002


def fetch_pinned_ca(manager_url: str, fingerprint: str, timeout: float = 20.0) -> str:
    """The manager's CA certificate, accepted only if its fingerprint is the pinned one."""
    base, _, _ = _base(manager_url)
    try:
        want = pki.normalise_fingerprint(fingerprint)
    except ValueError as err:
        raise UsageError(str(err), "give the fingerprint `appliance manager ca-fingerprint` prints") from None
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE  # the CA is checked by its pinned fingerprint below
    try:
        with urllib.request.urlopen(f"{base}/api/v1/ca", context=unverified, timeout=timeout) as resp:
            body = json.load(resp)
    except (OSError, ValueError) as err:
        raise EnrollmentError(
            f"cannot fetch the manager CA from {base}: {err}", "check --manager and the network"
        ) from None
    ca_pem = str(body.get("certificate_pem", ""))
    seen = pki.fingerprint(tls.load_ca_pem(ca_pem))
    if seen != want:
        raise EnrollmentError(
            f"the manager at {base} presents CA {seen}, not the pinned {want}",
            "someone may be in the middle, or the fingerprint is wrong: check `appliance manager ca-fingerprint` "
            "on the manager",
        )
    return ca_pem


def _local_address(host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=10) as sock:
        return str(sock.getsockname()[0])


def _post(url: str, body: dict[str, Any], ca_pem: str, timeout: float = 30.0) -> dict[str, Any]:
    ctx = ssl.create_default_context(cadata=ca_pem)
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
            return dict(json.load(resp))
    except urllib.error.HTTPError as err:
        try:
            message = json.load(err)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {err.code}"
        raise EnrollmentError(
            f"the manager refused the enrollment: {message}", "see the manager's events"
        ) from None
    except (OSError, ssl.SSLError) as err:
        raise EnrollmentError(
            f"cannot reach the manager at {url}: {err}",
            "check that the manager's certificate names the host in --manager",
        ) from None


def enroll(config: AgentConfig, request: EnrollRequest) -> dict[str, Any]:
    store, server_uuid = open_state(config)
    try:
        current = store.get_ownership()
        base, host, port = _base(request.manager_url)
        ca_pem = fetch_pinned_ca(request.manager_url, request.fingerprint)
        csr = pki.make_csr(pki.load_key(config.paths.key), server_uuid)
        answer = _post(
            f"{base}/api/v1/enroll",
            {
                "token": request.token,
                "server_uuid": server_uuid,
                "hostname": (request.hostname or socket.gethostname()).split(".")[0][:64],
                "address": request.address or _local_address(host, port),
                "agent_port": request.agent_port,
                "agent_fingerprint": pki.fingerprint(pki.load_cert(config.paths.certificate)),
                "csr_pem": pki.csr_pem(csr).decode(),
            },
            ca_pem,
        )
        if current is not None and current.manager_uuid != answer["manager_uuid"]:
            raise ConfigError(
                f"this server is owned by manager {current.manager_uuid}",
                "release it from that manager first",
            )
        if pki.fingerprint(tls.load_ca_pem(answer["ca_pem"])) != pki.fingerprint(tls.load_ca_pem(ca_pem)):
            raise EnrollmentError("the manager answered with another CA than the pinned one", "enrol again")
        tls.check_issued_client_certificate(answer["certificate_pem"], ca_pem, config.paths.key, server_uuid)
        tls.write_file_atomic(config.paths.client_certificate, answer["certificate_pem"].encode())
        tls.write_file_atomic(config.paths.manager_ca, ca_pem.encode())
        store.set_ownership(
            Ownership(
                manager_uuid=answer["manager_uuid"],
                ca_pem=ca_pem,
                event_url=answer["event_url"],
                statistics_url=answer["statistics_url"],
                client_cert_path=str(config.paths.client_certificate),
                client_key_path=str(config.paths.key),
                taken_at=time.time(),
            )
        )
        return {
            "server_uuid": server_uuid,
            "manager_uuid": answer["manager_uuid"],
            "event_url": answer["event_url"],
        }
    finally:
        store.close()
