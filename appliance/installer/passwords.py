"""crypt(3) SHA-512 password hashes (the format of /etc/shadow and ``ovsagent --iscrypted``)."""

from __future__ import annotations

import re
from typing import Any

from appliance.errors import ConfigError

# $id$[rounds=N$]salt$hash for the schemes glibc's crypt understands (MD5, SHA-256/512, yescrypt, bcrypt).
_CRYPT_RE = re.compile(r"^\$(1|5|6|y|2[abxy]|gy|7)\$[./A-Za-z0-9$=,]+$")
# glibc's default round count: the same hashes as 'openssl passwd -6' and 'mkpasswd -m sha-512'.
_ROUNDS = 5000


def _sha512_crypt() -> Any:
    from passlib.hash import sha512_crypt  # passlib's registry is slow to load: only when hashing

    return sha512_crypt


def looks_like_crypt_hash(value: str) -> bool:
    return bool(_CRYPT_RE.match(value))


def sha512_crypt(password: str) -> str:
    """Hash ``password`` with crypt(3) SHA-512 and a random salt."""
    if not password:
        raise ConfigError("an empty password cannot be hashed", "give a non-empty password")
    return str(_sha512_crypt().using(rounds=_ROUNDS).hash(password))


def verify_sha512_crypt(password: str, hashed: str) -> bool:
    return bool(_sha512_crypt().verify(password, hashed))
