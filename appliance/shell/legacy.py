"""DEPRECATED legacy API on TCPS (port 54322, off by default): one command per line over TLS.

Kept for old scripts only; every call has a WS-API equivalent (docs/cli.md). Each connection logs a
deprecation warning. The protocol, one UTF-8 line each way:

    server: OK appliance-legacy/1 DEPRECATED: use the WS-API at https://HOST:7002/api/v1
    client: LOGIN USER PASSWORD        -> OK {"user": ..., "role": ...}  or  ERR {"error": {...}}
    client: <any shell command>        -> OK <JSON answer>               or  ERR {"error": {...}}
    client: QUIT                       -> OK {} and the server closes
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Any

from appliance.shell import output
from appliance.shell.api import CommandError, WsApi
from appliance.shell.engine import Engine
from appliance.shell.gate import Gate, LoginRefused
from appliance.shell.words import split_commands, tokens

log = logging.getLogger(__name__)
MAX_LINE = 65536
IDLE_SECONDS = 600.0
PROTOCOL = "appliance-legacy/1"


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def ok(data: Any) -> bytes:
    return b"OK " + output.as_json({} if data is None else data, compact=True).encode() + b"\n"


def err(code: str, message: str) -> bytes:
    return (
        b"ERR " + output.as_json({"error": {"code": code, "message": message}}, compact=True).encode() + b"\n"
    )


class LegacyConnection:
    def __init__(
        self, gate: Gate, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ws_api: str
    ) -> None:
        self.gate, self.reader, self.writer, self.ws_api = gate, reader, writer, ws_api
        peer = writer.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"
        self.api: WsApi | None = None
        self.engine: Engine | None = None

    async def run(self) -> None:
        log.warning(
            "legacy TCPS API: connection from %s; this API is deprecated, move its scripts to the WS-API (%s)",
            self.peer,
            self.ws_api,
        )
        self.writer.write(f"OK {PROTOCOL} DEPRECATED: use the WS-API at {self.ws_api}\n".encode())
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(self.reader.readline(), IDLE_SECONDS)
                except TimeoutError:
                    self.writer.write(err("idle", f"no command for {IDLE_SECONDS:.0f} s; closing"))
                    break
                except (ValueError, asyncio.LimitOverrunError):
                    self.writer.write(
                        err("line_too_long", f"a line may be at most {MAX_LINE} bytes; closing")
                    )
                    break
                if not raw:
                    break
                answer, done = await self.answer(raw.decode("utf-8", "replace").strip())
                self.writer.write(answer)
                await self.writer.drain()
                if done:
                    break
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            if self.api is not None:
                await asyncio.to_thread(self.api.close)
            self.writer.close()

    async def answer(self, line: str) -> tuple[bytes, bool]:
        if not line:
            return err("empty", "send a command, LOGIN USER PASSWORD, or QUIT"), False
        try:
            words = tokens(line)
        except CommandError as problem:
            return err(problem.code, problem.message), False
        verb = words[0].upper()
        if verb in ("QUIT", "EXIT"):
            return ok({}), True
        if verb == "LOGIN":
            return await self.login(words[1:]), False
        if self.engine is None:
            return err("unauthorized", "log in first: LOGIN USER PASSWORD"), False
        try:
            commands = split_commands(line)
        except CommandError as problem:
            return err(problem.code, problem.message), False
        if len(commands) != 1:
            return err("one_command", "send one command per line"), False
        outcome = await asyncio.to_thread(self.engine.run_words, commands[0])
        if outcome.error is not None:
            body = {**outcome.error.as_json(), **outcome.extra}
            return b"ERR " + output.as_json(body, compact=True).encode() + b"\n", outcome.exit
        return ok(outcome.data), outcome.exit

    async def login(self, words: list[str]) -> bytes:
        if len(words) != 2:
            return err("usage", "LOGIN USER PASSWORD (quote a password with spaces)")
        if self.api is not None:
            return err("logged_in", f"already logged in as {self.api.user}; QUIT and connect again")
        user, password = words
        try:
            api = await asyncio.to_thread(self.gate.password_login, "legacy TCPS", user, password, self.peer)
        except LoginRefused as refused:
            return err("unauthorized", refused.reason)
        self.api = api
        self.engine = Engine(api)
        self.engine.settings.output_mode = "json"
        return ok({"user": api.user, "role": api.role})


async def start(gate: Gate, host: str, port: int, tls: ssl.SSLContext, ws_api: str) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await LegacyConnection(gate, reader, writer, ws_api).run()

    return await asyncio.start_server(handle, host, port, ssl=tls, limit=MAX_LINE)
