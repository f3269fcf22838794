"""The agent password: crypt(3) SHA-512 hashes (``$6$salt$hash``, the format Oracle VM's
``ovsagent --iscrypted`` takes) and HTTP Basic credentials."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import threading

from passlib.hash import sha512_crypt

from appliance.errors import UsageError

AGENT_USER = "oracle"
MAX_PASSWORD_CHARS = 1024
_CRYPT_SHA512 = re.compile(r"^\$6\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$")


def check_new_password(password: str) -> None:
    if not password:
        raise UsageError("the agent password is empty", "give a non-empty password")
    if len(password) > MAX_PASSWORD_CHARS:
        raise UsageError(f"the agent password is longer than {MAX_PASSWORD_CHARS} characters", None)
    if any(c in password for c in "\r\n\0"):
        raise UsageError("the agent password contains a line break or NUL", "use a single-line password")


def hash_password(password: str) -> str:
    """crypt(3) SHA-512 with the default 5000 rounds: ``$6$<salt>$<86 chars>``."""
    check_new_password(password)
    return str(sha512_crypt.using(rounds=5000).hash(password))


def is_crypt_sha512(text: str) -> bool:
    return bool(_CRYPT_SHA512.match(text))


def check_crypted(text: str) -> str:
    text = text.strip()
    if not is_crypt_sha512(text):
        raise UsageError(
            "the crypted password is not a crypt(3) SHA-512 hash",
            "give a hash like the output of `openssl passwd -6`: $6$<salt>$<86 characters>",
        )
    return text


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """``Authorization: Basic ...`` → (user, password); None when absent or malformed."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class PasswordVerifier:
    """Verifies Basic credentials against the stored hash. A hash costs ~2 ms, so the last
    successful (hash, password digest) pairs are remembered; a new hash clears them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verified: set[tuple[str, bytes]] = set()

    def verify(self, stored_hash: str | None, user: str, password: str) -> bool:
        if not stored_hash or not hmac.compare_digest(user.encode(), AGENT_USER.encode()):
            return False
        if len(password) > MAX_PASSWORD_CHARS:
            return False
        key = (stored_hash, hashlib.sha256(password.encode()).digest())
        with self._lock:
            if key in self._verified:
                return True
        try:
            ok = bool(sha512_crypt.verify(password, stored_hash))
        except ValueError:
            return False
        if ok:
            with self._lock:
                if len(self._verified) > 64:
                    self._verified.clear()
                self._verified.add(key)
        return ok
