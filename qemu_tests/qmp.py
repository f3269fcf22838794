"""A small QMP client: QEMU's JSON machine protocol over a unix socket (power, media, links).

One command at a time; asynchronous events that arrive meanwhile are kept in ``events``.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any


class QMPError(Exception):
    """QEMU refused a command, or the QMP socket failed."""


class QMPClient:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[dict[str, Any]] = []
        self._sock: socket.socket | None = None
        self._buf = b""

    def connect(self, timeout: float = 30.0) -> None:
        """Connect (waiting for QEMU to create the socket), read the greeting, leave negotiation."""
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(self.path))
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                sock.close()
                if time.monotonic() > deadline:
                    raise QMPError(f"no QMP socket at {self.path} after {timeout:.0f} s") from exc
                time.sleep(0.1)
        sock.settimeout(timeout)
        self._sock = sock
        greeting = self._read_message()
        if "QMP" not in greeting:
            raise QMPError(f"unexpected QMP greeting: {greeting}")
        self.command("qmp_capabilities")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def command(self, name: str, /, timeout: float = 60.0, **arguments: Any) -> Any:
        """Run a QMP command and return its ``return`` value; raise QMPError on an ``error``."""
        if self._sock is None:
            raise QMPError("QMP is not connected")
        message: dict[str, Any] = {"execute": name}
        if arguments:
            message["arguments"] = arguments
        self._sock.settimeout(timeout)
        try:
            self._sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError as exc:
            raise QMPError(f"QMP {name}: {exc}") from exc
        while True:
            reply = self._read_message()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                err = reply["error"]
                raise QMPError(f"QMP {name} failed: {err.get('class')}: {err.get('desc')}")
            return reply.get("return")

    def wait_event(self, name: str, timeout: float) -> dict[str, Any]:
        """Return the first event called ``name`` (already received or arriving within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event["event"] == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0 or self._sock is None:
                raise QMPError(f"no QMP event {name} within {timeout:.0f} s")
            self._sock.settimeout(left)
            try:
                self.events.append(self._read_message())
            except TimeoutError:
                continue

    def _read_message(self) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buf:
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise
            except OSError as exc:  # a reset or a closed descriptor, not a timeout
                raise QMPError(f"QMP socket error: {exc}") from exc
            if not chunk:
                raise QMPError("QEMU closed the QMP socket (the machine has stopped)")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message
