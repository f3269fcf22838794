"""Where the GUI finds the WS-API, and its session settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from appliance.manager.config import parse_listen

# Wildcard listen addresses are reached over loopback.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


@dataclass(frozen=True)
class GuiConfig:
    ca_file: Path  # the manager CA, to verify the WS-API's certificate
    # https://HOST:PORT/api/v1; None: the address and port the first request came in on (the
    # listener this very manager serves on, whatever --listen said).
    api_base: str | None = None
    mount_path: str = "/ui"
    # A proxied event stream ends after this long; the browser reconnects at once and resumes
    # from the last event id, so a manager shutdown never waits on an open browser tab for longer.
    stream_seconds: float = 15.0
    # Seconds an action waits for its job before the page answers (longer jobs are followed live).
    action_wait_seconds: float = 2.0
    max_sessions: int = 10_000


def api_base_for(listen: str) -> str:
    """The WS-API base URL for a listen address (HOST:PORT); wildcards are reached over loopback."""
    host, port = parse_listen(listen)
    return api_base_at(host, port)


def api_base_at(host: str, port: int) -> str:
    host = _LOOPBACK.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}/api/v1"
