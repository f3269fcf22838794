"""Pushes the outbox to the owning manager over HTTPS with the agent's client certificate:
events to ``event_url``, samples to ``statistics_url``, oldest first, in batches. A batch leaves
the outbox only after the manager answered 202, so an interrupted push is replayed (the manager
de-duplicates by event id and by sample key)."""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from appliance.server import tls
from appliance.server.events import make_event
from appliance.server.outbox import Outbox
from appliance.server.store import EVENT, SAMPLE, Ownership

log = logging.getLogger(__name__)

REJECTED_STATUSES = (400, 413, 422)  # the batch itself is wrong: retrying cannot help


class PushError(Exception):
    """The manager could not be reached or refused for a reason that may pass."""


class Pusher:
    def __init__(self, outbox: Outbox, retry_max: float = 30.0, timeout: float = 15.0) -> None:
        self.outbox = outbox
        self.store = outbox.store
        self.retry_max = retry_max
        self.timeout = timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPSConnection | None = None
        self._conn_key: tuple[Any, ...] | None = None
        self.last_error: str = ""
        self.pushed = {"events": 0, "samples": 0}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="agent-pusher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.outbox.wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 5)
        self._close()

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            self.outbox.wakeup.clear()
            own = self.store.get_ownership()
            if own is None:
                self.outbox.wakeup.wait(5.0)
                continue
            try:
                progressed = self.push_once(own)
            except PushError as err:
                if str(err) != self.last_error:
                    log.warning("pushing to the manager failed (will retry): %s", err)
                self.last_error = str(err)
                self._close()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.retry_max)
                continue
            if self.last_error:
                log.info("pushing to the manager works again")
                self.last_error = ""
            backoff = 1.0
            if not progressed:
                self.outbox.wakeup.wait(2.0)

    def push_once(self, own: Ownership) -> bool:
        """Send at most one batch of each kind; True if anything left the outbox."""
        progressed = False
        limits = self.outbox.limits
        for kind, url, key, limit in (
            (EVENT, own.event_url, "events", limits.events_per_post),
            (SAMPLE, own.statistics_url, "samples", limits.samples_per_post),
        ):
            items = self.store.peek(kind, limit)
            if not items:
                continue
            status, body = self._post(own, url, {key: [item.body for item in items]})
            seqs = [item.seq for item in items]
            if status == 202:
                self.outbox.acked(kind, seqs)
                self.pushed[key] += len(items)
                progressed = True
            elif status in REJECTED_STATUSES:
                self.outbox.acked(kind, seqs)
                log.error("the manager rejected %d %s with HTTP %d: %s", len(items), key, status, body[:500])
                self.outbox.add_event(
                    make_event(
                        "agent.push_rejected",
                        "server",
                        self.outbox.server_uuid,
                        f"the manager rejected a batch of {len(items)} {key} (HTTP {status}); it was dropped",
                        "error",
                    )
                )
                progressed = True
            else:
                raise PushError(f"POST {url} answered HTTP {status}: {body[:200]}")
        return progressed

    # -- HTTPS ------------------------------------------------------------------------------------
    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._conn_key = None

    def _connection(self, own: Ownership, url: str) -> tuple[http.client.HTTPSConnection, str]:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise PushError(f"{url} is not an https:// URL; take ownership again with https URLs")
        if not own.client_cert_path or not Path(own.client_cert_path).exists():
            raise PushError(
                "no client certificate from the manager yet; events and statistics stay queued"
                " until take_ownership supplies one"
            )
        key = (parts.hostname, parts.port, own.manager_uuid, own.taken_at, own.client_cert_path)
        if self._conn is None or self._conn_key != key:
            self._close()
            try:
                ctx = tls.client_context(
                    own.ca_pem,
                    Path(own.client_cert_path),
                    Path(own.client_key_path) if own.client_key_path else None,
                )
            except (ssl.SSLError, OSError, ValueError) as err:
                raise PushError(f"cannot load the push credentials: {err}") from err
            self._conn = http.client.HTTPSConnection(
                parts.hostname, parts.port or 443, context=ctx, timeout=self.timeout
            )
            self._conn_key = key
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return self._conn, path

    def _post(self, own: Ownership, url: str, payload: dict[str, Any]) -> tuple[int, str]:
        conn, path = self._connection(own, url)
        data = json.dumps(payload).encode()
        try:
            conn.request(
                "POST",
                path,
                body=data,
                headers={"Content-Type": "application/json", "Connection": "keep-alive"},
            )
            resp = conn.getresponse()
            body = resp.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException, ssl.SSLError) as err:
            self._close()
            raise PushError(f"POST {url} failed: {err}") from err
        if resp.will_close:
            self._close()
        return resp.status, body
