"""Certificates for the whole stack: a CA, leaf certificates it signs, fingerprints.

Shared by the manager (its CA and TLS certificate) and the agent (its own key and CSR).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LEAF_LIFETIME = dt.timedelta(days=398)
CA_LIFETIME = dt.timedelta(days=3650)
PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class KeyPair:
    key: PrivateKey
    cert: x509.Certificate


def new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_ca(common_name: str, *, lifetime: dt.timedelta = CA_LIFETIME) -> KeyPair:
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(key, cert)


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for item in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(item)))
        except ValueError:
            entries.append(x509.DNSName(item))
    return x509.SubjectAlternativeName(entries)


def issue_leaf(
    ca: KeyPair,
    public_key: ec.EllipticCurvePublicKey,
    common_name: str,
    *,
    names: list[str] | None = None,
    server: bool = True,
    client: bool = True,
    lifetime: dt.timedelta = LEAF_LIFETIME,
) -> x509.Certificate:
    """Sign a leaf certificate for ``public_key``; ``names`` become subjectAltNames."""
    now = _now()
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
    usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if names:
        builder = builder.add_extension(_san(names), critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as colon-separated upper-case hex (the form browsers and openssl show)."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def normalise_fingerprint(text: str) -> str:
    """Accept ``AA:BB..``, ``aabb..`` or ``SHA256:aabb..``; return the canonical colon form."""
    raw = text.strip().upper().removeprefix("SHA256:").replace(":", "").replace(" ", "")
    if len(raw) != 64 or any(c not in "0123456789ABCDEF" for c in raw):
        raise ValueError(f"not a SHA-256 fingerprint: {text!r}")
    return ":".join(raw[i : i + 2] for i in range(0, 64, 2))


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file created 0600 from the start (never world-readable, not even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{path}: expected an EC private key")
    return key


def save_pair(pair: KeyPair, cert_path: Path, key_path: Path) -> None:
    write_private(key_path, key_pem(pair.key))
    write_public(cert_path, cert_pem(pair.cert))


def load_pair(cert_path: Path, key_path: Path) -> KeyPair:
    return KeyPair(load_key(key_path), load_cert(cert_path))


def renewal_due(cert: x509.Certificate, *, fraction: float = 2 / 3, now: dt.datetime | None = None) -> bool:
    """True once ``fraction`` of the certificate's lifetime has passed."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return (now or _now()) >= start + (end - start) * fraction


def make_csr(key: PrivateKey, common_name: str) -> x509.CertificateSigningRequest:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())


def csr_pem(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.PEM)


def read_csr(pem: str) -> x509.CertificateSigningRequest:
    """Parse a CSR and check its self-signature; ValueError says what is wrong."""
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError as err:
        raise ValueError(f"not a PEM certificate signing request: {err}") from None
    if not csr.is_signature_valid:
        raise ValueError("the CSR's signature does not match its key")
    if not isinstance(csr.public_key(), ec.EllipticCurvePublicKey):
        raise ValueError("the CSR must carry an EC (P-256) key")
    return csr


def common_name(subject: x509.Name) -> str | None:
    names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def serial_hex(cert: x509.Certificate) -> str:
    return f"{cert.serial_number:x}"
