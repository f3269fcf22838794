"""The manager CA at work: certificates for agents (recorded, revocable), the manager's own
certificates (renewed at two thirds of their life), and one-time enrollment tokens."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from appliance import pki
from appliance.manager.config import StatePaths
from appliance.manager.problems import Forbidden, Invalid, Unauthorized
from appliance.manager.schema import certificates, enrollment_tokens
from appliance.manager.timeutil import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CertificateAuthority:
    paths: StatePaths
    leaf_lifetime: dt.timedelta = pki.LEAF_LIFETIME

    def pair(self) -> pki.KeyPair:
        return pki.load_pair(self.paths.ca_cert, self.paths.ca_key)

    def ca_pem(self) -> str:
        return self.paths.ca_cert.read_text()

    def issue_agent(
        self, conn: Connection, public_key: ec.EllipticCurvePublicKey, server_id: str
    ) -> x509.Certificate:
        """A client certificate for an agent (CN = server id), recorded so it can be revoked."""
        cert = pki.issue_leaf(
            self.pair(), public_key, server_id, server=True, client=True, lifetime=self.leaf_lifetime
        )
        conn.execute(
            insert(certificates).values(
                serial=pki.serial_hex(cert),
                server_id=server_id,
                fingerprint=pki.fingerprint(cert),
                not_before=cert.not_valid_before_utc.replace(tzinfo=None),
                not_after=cert.not_valid_after_utc.replace(tzinfo=None),
                issued_at=utcnow(),
            )
        )
        return cert

    def issue_for_csr(self, conn: Connection, csr_pem: str, server_id: str) -> x509.Certificate:
        try:
            csr = pki.read_csr(csr_pem)
        except ValueError as err:
            raise Invalid(str(err), "send the CSR made by `appliance agent enroll`") from None
        requested = pki.common_name(csr.subject)
        if requested != server_id:
            raise Forbidden(
                f"the CSR asks for the name {requested!r}, but this server is {server_id!r}",
                "a server can only get a certificate for its own server UUID",
            )
        key = csr.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        return self.issue_agent(conn, key, server_id)


def revoke_server(conn: Connection, server_id: str, reason: str) -> int:
    return int(
        conn.execute(
            update(certificates)
            .where(certificates.c.server_id == server_id, certificates.c.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoke_reason=reason[:255])
        ).rowcount
    )


def certificate_status(conn: Connection, cert: x509.Certificate) -> str:
    """'valid', 'revoked' or 'unknown' (not issued by this manager for an agent)."""
    row = conn.execute(
        select(certificates.c.revoked_at).where(certificates.c.serial == pki.serial_hex(cert))
    ).first()
    if row is None:
        return "unknown"
    return "revoked" if row[0] is not None else "valid"


def renew_own_certificates(
    paths: StatePaths, manager_uuid: str, names: list[str], *, force: bool = False
) -> list[str]:
    """Renew the manager's TLS and client certificates once two thirds of their life has passed."""
    ca = pki.load_pair(paths.ca_cert, paths.ca_key)
    renewed = []
    for cert_path, key_path, common, server in (
        (paths.server_cert, paths.server_key, f"manager {manager_uuid}", True),
        (paths.client_cert, paths.client_key, manager_uuid, False),
    ):
        if cert_path.exists() and not force and not pki.renewal_due(pki.load_cert(cert_path)):
            continue
        key = pki.new_key()
        cert = pki.issue_leaf(
            ca, key.public_key(), common, names=names if server else None, server=server, client=not server
        )
        pki.save_pair(pki.KeyPair(key, cert), cert_path, key_path)
        renewed.append(cert_path.name)
    if renewed:
        log.info("renewed %s", ", ".join(renewed))
    return renewed


# --- enrollment tokens ---


def create_token(
    conn: Connection, *, ttl: dt.timedelta, uses: int, created_by: str
) -> tuple[str, str, dt.datetime]:
    """A new token (shown once, stored hashed): returns (id, token, expires_at)."""
    from appliance.manager.api.auth import token_hash
    from appliance.manager.resources import new_id

    token = "enr_" + secrets.token_urlsafe(24)
    token_id = new_id()
    expires = utcnow() + ttl
    conn.execute(
        insert(enrollment_tokens).values(
            id=token_id,
            token_hash=token_hash(token),
            uses_left=uses,
            uses_total=uses,
            created_by=created_by,
            created_at=utcnow(),
            expires_at=expires,
        )
    )
    return token_id, token, expires


def consume_token(conn: Connection, token: str) -> str:
    """Use one use of a token inside the caller's transaction; returns its id or raises Unauthorized."""
    from appliance.manager.api.auth import token_hash

    row = (
        conn.execute(
            select(enrollment_tokens)
            .where(enrollment_tokens.c.token_hash == token_hash(token))
            .with_for_update()
        )
        .mappings()
        .first()
    )
    if row is None:
        raise Unauthorized(
            "the enrollment token is unknown", "create one with `appliance manager token create`"
        )
    if row["expires_at"] <= utcnow():
        raise Unauthorized(
            "the enrollment token has expired", "create a new one with `appliance manager token create`"
        )
    if row["uses_left"] <= 0:
        raise Unauthorized(
            "the enrollment token has been used up", "create a new one with `appliance manager token create`"
        )
    conn.execute(
        update(enrollment_tokens)
        .where(enrollment_tokens.c.id == row["id"])
        .values(uses_left=row["uses_left"] - 1)
    )
    return str(row["id"])


COMPANION_PREFIX = "companion:"


def issue_companion_certificate(conn: Connection, paths: StatePaths, name: str = "local") -> None:
    """A client certificate for the apps `serve` runs beside the WS-API (CN ``companion:<name>``).

    With it the SSH front end may open a session for a user whose SSH key it has verified; it is
    made anew at every start and the older ones are revoked.
    """
    subject = COMPANION_PREFIX + name
    revoke_server(conn, subject, "superseded at manager start")
    key = pki.new_key()
    authority = CertificateAuthority(paths)
    cert = authority.issue_agent(conn, key.public_key(), subject)
    pki.save_pair(pki.KeyPair(key, cert), paths.companion_cert, paths.companion_key)
