"""Users' SSH public keys: parsing and the OpenSSH SHA256 fingerprint."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from appliance.manager.problems import Invalid


@dataclass(frozen=True)
class SshKey:
    public_key: str  # "TYPE BASE64" (no comment)
    fingerprint: str  # "SHA256:..." as ssh-keygen -l shows it
    comment: str


def parse(line: str) -> SshKey:
    parts = line.strip().split(None, 2)
    try:
        load_ssh_public_key(" ".join(parts[:2]).encode())
        blob = base64.b64decode(parts[1], validate=True)
    except (ValueError, IndexError, binascii.Error, TypeError, UnsupportedAlgorithm) as err:
        raise Invalid(f"not an SSH public key: {err}", "give the one line of your id_ed25519.pub") from None
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return SshKey(f"{parts[0]} {parts[1]}", f"SHA256:{digest}", parts[2][:255] if len(parts) > 2 else "")
