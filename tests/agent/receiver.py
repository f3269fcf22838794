"""A loopback HTTPS ingest receiver that enforces the manager's push contract: client certificate
from the manager CA required (identity = its CN), exact JSON shapes, batch limits, 202 answers,
de-duplication by event id and by sample key."""

from __future__ import annotations

import json
import math
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from appliance import pki

EVENT_KEYS = {"id", "time", "severity", "type", "object_type", "object_id", "message"}
SAMPLE_KEYS = {"object_type", "object_id", "metric", "time", "value"}
SEVERITIES = {"info", "warning", "error", "critical"}
SERVER_METRICS = {
    "cpu_percent",
    "memory_used_bytes",
    "memory_total_bytes",
    "disk_read_bytes",
    "disk_write_bytes",
    "net_rx_bytes",
    "net_tx_bytes",
}
VM_METRICS = {
    "cpu_percent",
    "memory_bytes",
    "vcpus",
    "disk_read_bytes",
    "disk_write_bytes",
    "net_rx_bytes",
    "net_tx_bytes",
}
EVENTS_PATH = "/api/v1/events/ingest"
STATS_PATH = "/api/v1/statistics/ingest"


def _event_error(ev: Any) -> str | None:
    if not isinstance(ev, dict) or set(ev) != EVENT_KEYS:
        return f"event keys must be {sorted(EVENT_KEYS)}"
    if not all(isinstance(ev[k], str) and ev[k] for k in EVENT_KEYS - {"time"}):
        return "event string fields must be non-empty strings"
    if not isinstance(ev["time"], float) or not math.isfinite(ev["time"]):
        return "event time must be a float"
    if ev["severity"] not in SEVERITIES or ev["object_type"] not in ("server", "vm"):
        return "bad severity or object_type"
    return None


def _sample_error(s: Any) -> str | None:
    if not isinstance(s, dict) or set(s) != SAMPLE_KEYS:
        return f"sample keys must be {sorted(SAMPLE_KEYS)}"
    metrics = SERVER_METRICS if s["object_type"] == "server" else VM_METRICS
    if s["object_type"] not in ("server", "vm") or s["metric"] not in metrics:
        return f"unknown metric {s.get('metric')} for {s.get('object_type')}"
    if not isinstance(s["time"], float) or not isinstance(s["value"], float):
        return "sample time and value must be floats"
    return None


@dataclass
class Received:
    events: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (server, id) -> event
    event_order: list[str] = field(default_factory=list)
    duplicates: int = 0
    samples: dict[tuple[str, str, str, float], float] = field(default_factory=dict)
    posts: int = 0
    rejected: list[str] = field(default_factory=list)


class IngestReceiver:
    def __init__(self, ca: pki.KeyPair, workdir: Path) -> None:
        key = pki.new_key()
        cert = pki.issue_leaf(ca, key.public_key(), "manager.test", names=["127.0.0.1"], client=False)
        self.cert_path, self.key_path = workdir / "receiver.crt", workdir / "receiver.key"
        self.cert_path.write_bytes(pki.cert_pem(cert))
        self.key_path.write_bytes(pki.key_pem(key))
        self.ca_pem = pki.cert_pem(ca.cert).decode()
        self.received = Received()
        self.lock = threading.Lock()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._connections: list[Any] = []

    @property
    def event_url(self) -> str:
        return f"https://127.0.0.1:{self.port}{EVENTS_PATH}"

    @property
    def statistics_url(self) -> str:
        return f"https://127.0.0.1:{self.port}{STATS_PATH}"

    def start(self) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=self.ca_pem)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                cert = self.connection.getpeercert()  # type: ignore[attr-defined]
                server_id = next(v for rdn in cert["subject"] for k, v in rdn if k == "commonName")
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.handle(self, server_id, body)

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

            def get_request(self) -> Any:
                sock, addr = self.socket.accept()
                conn = ctx.wrap_socket(sock, server_side=True)
                receiver._connections.append(conn)
                return conn, addr

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._handler_reply = Handler._reply
        threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True).start()

    def handle(self, handler: Any, server_id: str, body: Any) -> None:
        path = handler.path
        with self.lock:
            self.received.posts += 1
            if path == EVENTS_PATH:
                items = body.get("events") if isinstance(body, dict) and set(body) == {"events"} else None
                errors = ["body must be {events: [...]}"] if not isinstance(items, list) else []
                errors += [e for e in map(_event_error, items or []) if e]
                if items is not None and len(items) > 1000:
                    errors.append("more than 1000 events")
                if errors:
                    self.received.rejected.append(errors[0])
                    handler._reply(422, {"error": errors[0]})
                    return
                accepted = dup = 0
                for ev in items or []:
                    key = (server_id, ev["id"])
                    if key in self.received.events:
                        dup += 1
                        continue
                    self.received.events[key] = ev
                    self.received.event_order.append(ev["id"])
                    accepted += 1
                self.received.duplicates += dup
                handler._reply(202, {"accepted": accepted, "duplicates": dup})
            elif path == STATS_PATH:
                items = body.get("samples") if isinstance(body, dict) and set(body) == {"samples"} else None
                errors = ["body must be {samples: [...]}"] if not isinstance(items, list) else []
                errors += [e for e in map(_sample_error, items or []) if e]
                if items is not None and len(items) > 10000:
                    errors.append("more than 10000 samples")
                if errors:
                    self.received.rejected.append(errors[0])
                    handler._reply(422, {"error": errors[0]})
                    return
                for s in items or []:
                    self.received.samples[(s["object_type"], s["object_id"], s["metric"], s["time"])] = s[
                        "value"
                    ]
                handler._reply(202, {"accepted": len(items or [])})
            else:
                handler._reply(404, {"error": "not found"})

    def stop(self) -> None:
        """The manager goes away: no listener and every open connection cut."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for conn in self._connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            except OSError:
                pass
        self._connections.clear()

    def events_of_type(self, event_type: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.received.events.values() if e["type"] == event_type]
