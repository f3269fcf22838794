"""Certificate helpers for the agent: its self-signed certificate, TLS contexts, checks on
certificates the manager hands over. Kept behind plain functions so they can move into the shared
PKI module later."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.errors import ConfigError


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_file_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _subject_alt_names(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def make_self_signed(key_path: Path, cert_path: Path, common_name: str, names: list[str]) -> None:
    """A new EC P-256 key and a 10-year self-signed server certificate for ``names``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(_subject_alt_names(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    write_file_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def ensure_self_signed(key_path: Path, cert_path: Path, common_name: str, names: list[str]) -> bool:
    """Make the agent's key and certificate at first start; returns True if it made them."""
    if key_path.exists() and cert_path.exists():
        return False
    make_self_signed(key_path, cert_path, common_name, names)
    return True


def fingerprint_sha256(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def load_ca_pem(ca_pem: str) -> x509.Certificate:
    """Parse a CA certificate given by a manager; ConfigError if it is not one."""
    try:
        cert = x509.load_pem_x509_certificate(ca_pem.encode())
    except ValueError as err:
        raise ConfigError(
            f"the CA certificate is not a PEM X.509 certificate ({err})",
            "pass the manager CA certificate as PEM text beginning with -----BEGIN CERTIFICATE-----",
        ) from err
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise ConfigError(
            "the CA certificate is not a CA (basicConstraints CA:TRUE is missing)",
            "pass the manager's CA certificate, not a leaf certificate",
        )
    return cert


def check_issued_client_certificate(cert_pem: str, ca_pem: str, key_path: Path, common_name: str) -> None:
    """The certificate a manager issued for this agent must be signed by its CA, carry the agent's
    own public key and name the server (CN = server UUID)."""
    ca = load_ca_pem(ca_pem)
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError as err:
        raise ConfigError(f"the client certificate is not PEM X.509 ({err})", "pass PEM text") from err
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as err:
        raise ConfigError(
            "the client certificate was not issued by the given CA",
            "sign the agent's public key with the manager CA you pass as ca_pem",
        ) from err
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    own = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if own != theirs:
        raise ConfigError(
            "the client certificate is for another key than this agent's",
            "issue it for the public key in the agent's TLS certificate (port 8899)",
        )
    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if cns != [common_name]:
        raise ConfigError(
            f"the client certificate names {cns!r}, expected CN={common_name}",
            "issue it with the server UUID (discover_server) as common name",
        )


def server_context(cert_path: Path, key_path: Path, client_ca_pem: str | None) -> ssl.SSLContext:
    """TLS >= 1.2 server context; with ``client_ca_pem`` a client certificate from that CA is required."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path)
    if client_ca_pem:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=client_ca_pem)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_context(ca_pem: str, cert_path: Path | None, key_path: Path | None) -> ssl.SSLContext:
    """Context for pushing to the manager: verify it against its CA, present our client certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_path is not None and key_path is not None:
        ctx.load_cert_chain(cert_path, key_path)
    return ctx


def peer_common_name(peercert: dict | None) -> str | None:
    """CN of a verified peer certificate as returned by ``SSLSocket.getpeercert()``."""
    if not peercert:
        return None
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None
