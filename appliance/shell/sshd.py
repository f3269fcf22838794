"""The SSH front end (port 10000): password or public-key login as a manager user, then the shell.

``ssh -p 10000 admin@manager`` opens an interactive shell (line editing, history, Tab completion);
``ssh -p 10000 admin@manager "list Vm"`` runs one line and exits with its status. Built on asyncssh
(pure Python, runs inside the manager's process, no system sshd or PAM users needed).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from pathlib import Path
from typing import Any, cast

import asyncssh

from appliance.pki import write_private
from appliance.shell.api import WsApi
from appliance.shell.engine import Engine, common_prefix, exit_status
from appliance.shell.gate import Gate, LoginRefused
from appliance.shell.session import Outcome

log = logging.getLogger(__name__)
PROMPT = "appliance> "
HOST_KEY_NAME = "ssh_host_ed25519_key"


def ensure_host_key(state_root: Path) -> Path:
    """The server's host key, made at first start and kept (clients pin it in known_hosts)."""
    state_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(state_root, 0o700)
    path = state_root / HOST_KEY_NAME
    if not path.exists():
        key = asyncssh.generate_private_key("ssh-ed25519")
        write_private(path, key.export_private_key())
        log.info("made the CLI's SSH host key %s (%s)", path, key.get_fingerprint("sha256"))
    return path


class CliServer(asyncssh.SSHServer):
    """One SSH connection: authentication through the WS-API, then the user's session."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.conn: asyncssh.SSHServerConnection | None = None
        self.peer = "?"
        self.user = ""
        self.api: WsApi | None = None
        self.password: str | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"

    def connection_lost(self, exc: Exception | None) -> None:
        if self.api is not None:
            api, self.api = self.api, None
            asyncio.get_event_loop().run_in_executor(None, api.close)

    def begin_auth(self, username: str) -> bool:
        left = self.gate.limiter.locked_for(self.peer)
        if left and self.conn is not None:
            self.conn.send_auth_banner(
                f"too many failed logins from {self.peer}; try again in {int(left) + 1} s\n"
            )
        return True

    def password_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        try:
            api = await asyncio.to_thread(self.gate.password_login, "SSH", username, password, self.peer)
        except LoginRefused:
            return False
        self.api, self.user, self.password = api, username, password
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # A session is opened now; if the client then fails to sign with this key, asyncssh refuses
        # the login and connection_lost ends the session.
        public_key = key.export_public_key("openssh").decode().strip()
        try:
            api = await asyncio.to_thread(self.gate.key_login, username, public_key, self.peer)
        except LoginRefused:
            return False
        if self.api is not None:
            old, self.api = self.api, None
            await asyncio.to_thread(old.close)
        self.api, self.user, self.password = api, username, None
        return True

    async def session_api(self) -> WsApi:
        if self.api is None:
            raise LoginRefused("not logged in")
        return self.api


def write(process: asyncssh.SSHServerProcess, outcome: Outcome, *, terminal: bool = False) -> None:
    """Answers on stdout, errors on stderr; on a terminal both on stdout, to keep their order."""
    out, err = outcome.render()
    if out:
        process.stdout.write(out + "\n")
    if err:
        (process.stdout if terminal else process.stderr).write(err + "\n")


async def run_session(process: asyncssh.SSHServerProcess) -> None:
    conn = process.get_extra_info("connection")
    server = conn.get_owner()
    assert isinstance(server, CliServer)
    try:
        api = await server.session_api()
    except LoginRefused as refused:
        process.stderr.write(f"Error: {refused.reason}\n")
        process.exit(1)
        return
    loop = asyncio.get_running_loop()

    terminal = process.get_terminal_type() is not None

    def progress(line: str) -> None:
        stream = process.stdout if terminal else process.stderr
        loop.call_soon_threadsafe(stream.write, line + "\n")

    engine = Engine(api, progress=progress)
    if process.command is not None:
        outcomes = await asyncio.to_thread(engine.run_line, process.command)
        for outcome in outcomes:
            write(process, outcome)
        process.exit(exit_status(outcomes))
        return
    await Interactive(process, engine).run()


class Interactive:
    """The interactive shell: a prompt, Tab completion, Ctrl-C stops waiting for a job."""

    def __init__(self, process: asyncssh.SSHServerProcess, engine: Engine) -> None:
        self.process = process
        self.engine = engine
        self.tty = process.get_terminal_type() is not None
        self.typed_ahead: deque[str] = deque()
        self.reader: asyncio.Future[str] | None = None

    async def run(self) -> None:
        process, engine = self.process, self.engine
        await asyncio.to_thread(lambda: engine.schema)  # completion needs the live attribute names
        if self.tty:
            cast(Any, process.channel).register_key("\t", self.complete)  # the line editor's channel
            process.stdout.write(
                f"Appliance manager CLI: logged in as {engine.api.user} ({engine.api.role}). "
                "`help` lists the commands, Tab completes, `exit` leaves.\n"
            )
        status = 0
        while True:
            if self.tty:
                process.stdout.write(PROMPT)
            try:
                line = await self.next_line()
            except asyncssh.BreakReceived:
                if self.tty:
                    cast(Any, process.channel).clear_input()  # Ctrl-C drops the half-typed line
                process.stdout.write("^C\n")
                continue
            except (asyncssh.SignalReceived, asyncssh.TerminalSizeChanged):
                continue
            if not line:  # end of input
                break
            if not line.strip():
                continue
            outcomes = await self.run_line(line)
            for outcome in outcomes:
                write(process, outcome, terminal=self.tty)
            status = exit_status(outcomes)
            if any(o.exit for o in outcomes):
                status = 0
                break
        process.exit(status if not self.tty else 0)

    async def next_line(self) -> str:
        if self.typed_ahead:
            return self.typed_ahead.popleft()
        if self.reader is None:
            self.reader = asyncio.ensure_future(self.process.stdin.readline())
        try:
            return await self.reader
        finally:
            self.reader = None

    async def run_line(self, line: str) -> list[Outcome]:
        """Run a line in a worker thread; meanwhile Ctrl-C stops job waits and typed lines queue up."""
        work: asyncio.Future[Any] = asyncio.ensure_future(asyncio.to_thread(self.engine.run_line, line))
        while not work.done():
            if self.reader is None:
                self.reader = asyncio.ensure_future(self.process.stdin.readline())
            pending: set[asyncio.Future[Any]] = {work, self.reader}
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if self.reader in done:
                reader, self.reader = self.reader, None
                try:
                    typed = reader.result()
                except asyncssh.BreakReceived:
                    self.engine.cancel.set()
                    continue
                except (asyncssh.SignalReceived, asyncssh.TerminalSizeChanged):
                    continue
                if not typed:
                    self.engine.cancel.set()  # the client went away: stop waiting
                    self.typed_ahead.append("")
                else:
                    self.typed_ahead.append(typed)
        outcomes: list[Outcome] = work.result()
        return outcomes

    def complete(self, line: str, pos: int) -> tuple[str, int] | bool:
        before = line[:pos]
        candidates = self.engine.complete(before)
        if not candidates:
            return False
        current = "" if not before or before[-1].isspace() else before.split()[-1]
        stem = before[: len(before) - len(current)]
        if len(candidates) == 1:
            word = candidates[0] + ("" if candidates[0].endswith("=") else " ")
        else:
            word = common_prefix(candidates)
            if len(word) <= len(current):
                self.process.stdout.write("\n" + "  ".join(candidates) + "\n" + PROMPT)
                return line, pos
        return stem + word + line[pos:], len(stem) + len(word)


async def start(gate: Gate, host: str, port: int) -> asyncssh.SSHAcceptor:
    host_key = ensure_host_key(gate.state_root)
    return await asyncssh.create_server(
        lambda: CliServer(gate),
        host,
        port,
        server_host_keys=[str(host_key)],
        process_factory=run_session,
        encoding="utf-8",
        line_editor=True,
        line_history=500,
        login_timeout=60,
        allow_scp=False,
        agent_forwarding=False,
        x11_forwarding=False,
    )
