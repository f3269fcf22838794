"""Checks of answers shared by kickstarts and the interactive questions (no pykickstart here)."""

from __future__ import annotations

import re
from urllib.parse import urlparse

_FINGERPRINT_RE = re.compile(r"^(sha256:)?([0-9a-f]{2}(:?)){31}[0-9a-f]{2}$", re.IGNORECASE)
_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$",
    re.IGNORECASE,
)
MIN_ADMIN_PASSWORD = 8


def normalize_fingerprint(value: str) -> str:
    """``SHA256:AA:BB..`` / ``aabb..`` -> lower-case hex with colons, as our PKI prints it."""
    hexpart = value.lower().removeprefix("sha256:").replace(":", "")
    return ":".join(hexpart[i : i + 2] for i in range(0, len(hexpart), 2))


def valid_fingerprint(value: str) -> bool:
    return bool(_FINGERPRINT_RE.match(value.strip()))


def valid_hostname(value: str) -> bool:
    return bool(_HOSTNAME_RE.match(value))


def valid_manager_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme == "https" and bool(parsed.hostname)
