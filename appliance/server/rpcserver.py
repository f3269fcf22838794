"""XML-RPC over HTTPS: a threaded HTTP/1.1 server (keep-alive) that does each TLS handshake in
the connection's own thread, enforces the trust rules per request, caps request sizes and hands
the body to the dispatcher.

Trust: before ownership, HTTP Basic (user ``oracle``, the agent password); after ownership, only
client certificates issued by the owning manager's CA whose CN is the manager UUID."""

from __future__ import annotations

import http.server
import logging
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.server import tls
from appliance.server.config import Limits, StatePaths
from appliance.server.dispatch import Caller, Dispatcher
from appliance.server.passwords import PasswordVerifier, parse_basic_auth
from appliance.server.store import Ownership

log = logging.getLogger(__name__)

RPC_PATHS = ("/", "/RPC2")
DISCARD_LIMIT = 1 << 20


class TrustState:
    """The TLS context new connections get and the owner they must prove to be. Every change
    bumps ``generation``; a connection made under an older generation is refused."""

    def __init__(self, paths: StatePaths, ownership: Ownership | None) -> None:
        self._paths = paths
        self._lock = threading.Lock()
        self.generation = 0
        self.ownership: Ownership | None = None
        self._context: ssl.SSLContext | None = None
        self.update(ownership)

    def update(self, ownership: Ownership | None) -> None:
        ctx = tls.server_context(
            self._paths.certificate, self._paths.key, ownership.ca_pem if ownership else None
        )
        with self._lock:
            self._context = ctx
            self.ownership = ownership
            self.generation += 1

    def current(self) -> tuple[ssl.SSLContext, int]:
        with self._lock:
            assert self._context is not None
            return self._context, self.generation


@dataclass
class RPCApp:
    """What the HTTP layer needs from the agent."""

    trust: TrustState
    dispatcher: Dispatcher
    limits: Limits
    password_hash: Callable[[], str | None]
    verifier: PasswordVerifier


class AgentRequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "appliance-agent"
    sys_version = ""
    server: AgentRPCServer
    connection: ssl.SSLSocket

    def __init__(self, request: Any, client_address: Any, server: AgentRPCServer, generation: int) -> None:
        self.trust_generation = generation
        super().__init__(request, client_address, server)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _plain(
        self, status: int, text: str, close: bool = True, headers: dict[str, str] | None = None
    ) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _discard(self, count: int) -> None:
        while count > 0:
            chunk = self.rfile.read(min(count, 65536))
            if not chunk:
                return
            count -= len(chunk)

    def do_GET(self) -> None:
        self._plain(
            405, "this is an XML-RPC endpoint: POST a methodCall to / or /RPC2", headers={"Allow": "POST"}
        )

    def _authenticate(self) -> Caller | None:
        app = self.server.app
        own = app.trust.ownership
        address = self.client_address[0]
        if own is not None:
            if self.trust_generation != app.trust.generation:
                self._plain(
                    403,
                    "the server's trust settings changed; reconnect with the manager's client certificate",
                )
                return None
            cn = tls.peer_common_name(self.connection.getpeercert())
            if cn is None:
                self._plain(
                    403, "this server is owned by a manager: a client certificate from its CA is required"
                )
                return None
            if cn != own.manager_uuid:
                self._plain(403, f"client certificate CN={cn} is not the owning manager {own.manager_uuid}")
                return None
            return Caller("certificate", cn, address)
        creds = parse_basic_auth(self.headers.get("Authorization"))
        if creds is None or not app.verifier.verify(app.password_hash(), creds[0], creds[1]):
            self._plain(
                401,
                "authentication required: HTTP Basic with user 'oracle' and the agent password",
                headers={"WWW-Authenticate": 'Basic realm="appliance-agent"'},
            )
            return None
        return Caller("password", creds[0], address)

    def do_POST(self) -> None:
        app = self.server.app
        if self.path not in RPC_PATHS:
            self._plain(404, "not found: the XML-RPC endpoint is / (or /RPC2)")
            return
        if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length") is None:
            self._plain(411, "send the request with a Content-Length header (no chunked encoding)")
            return
        encoding = self.headers.get("Content-Encoding", "identity").lower()
        if encoding != "identity":
            self._plain(415, f"Content-Encoding {encoding} is not accepted; send the body uncompressed")
            return
        try:
            length = int(self.headers["Content-Length"])
        except ValueError:
            self._plain(400, "Content-Length is not a number")
            return
        if length < 0 or length > app.limits.max_request_bytes:
            # Swallow a little of the body so a moderately oversized request still sees the 413;
            # a huge one is cut off (its sender sees the connection reset).
            self._discard(min(max(length, 0), DISCARD_LIMIT))
            self._plain(413, f"the request is larger than {app.limits.max_request_bytes} bytes")
            return
        # Read the (bounded) body before answering, even a refusal: closing a socket with unread
        # data resets the connection and the client would never see the answer.
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            return
        caller = self._authenticate()
        if caller is None:
            return
        response = app.dispatcher.handle(caller, body, app.limits.max_xml_depth)
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(response)))
        self.end_headers()
        self.wfile.write(response)


class AgentRPCServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 512

    def __init__(self, host: str, port: int, app: RPCApp) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.app = app
        self._slots = threading.BoundedSemaphore(app.limits.max_connections)
        super().__init__((host, port), AgentRequestHandler)  # type: ignore[arg-type]

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # no reverse DNS lookup of the listen address
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning(
                "refusing a connection from %s: %d connections open",
                client_address[0],
                self.app.limits.max_connections,
            )
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs in the connection's thread: TLS handshake (bounded in time), then HTTP."""
        ctx, generation = self.app.trust.current()
        request.settimeout(self.app.limits.handshake_timeout)
        try:
            conn = ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as err:
            log.info("TLS handshake with %s failed: %s", client_address[0], err)
            return
        try:
            # Answers go out as header and body writes: without NODELAY, Nagle's algorithm and the
            # client's delayed ACK add ~40 ms to every keep-alive round trip.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(self.app.limits.idle_timeout)
            AgentRequestHandler(conn, client_address, self, generation)
        except (ssl.SSLError, OSError) as err:
            log.debug("connection from %s ended: %s", client_address[0], err)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("unexpected error serving %s", client_address[0] if client_address else "?")
