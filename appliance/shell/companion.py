"""Runs the CLI beside `appliance manager serve`: the SSH shell and, if asked, the legacy TCPS listener.

Both run on one asyncio loop in a thread of the manager process and reach the core only through the
WS-API on loopback, with each user's own session. A listener that cannot start (port taken) is
logged and left out; the manager goes on serving.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError
from appliance.manager.config import parse_listen

log = logging.getLogger(__name__)
logging.getLogger("asyncssh").setLevel(logging.WARNING)  # it logs every connection at INFO
DEFAULT_CLI_LISTEN = "0.0.0.0:10000"
DEFAULT_LEGACY_PORT = 54322
OFF = ("off", "none", "no", "")


@dataclass(frozen=True)
class CompanionConfig:
    api_url: str
    ca_file: Path
    state_root: Path  # STATE_DIR/cli
    tls_cert: Path
    tls_key: Path
    cli_listen: tuple[str, int] | None
    legacy_listen: tuple[str, int] | None
    companion_cert: tuple[Path, Path] | None = None  # the manager's companion certificate (key logins)


def loopback_url(listen: str) -> str:
    """The URL the companion uses to reach the WS-API it runs beside."""
    host, port = parse_listen(listen)
    try:
        addr = ipaddress.ip_address(host)
        if addr.is_unspecified:
            host = "::1" if addr.version == 6 else "127.0.0.1"
        host = f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        pass  # a host name: use it as it is (the certificate names it)
    return f"https://{host}:{port}/api/v1"


def listen_option(value: str | None, default_port: int) -> tuple[str, int] | None:
    if value is None or value.strip().lower() in OFF:
        return None
    return parse_listen(value, default_port)


class CliCompanion:
    def __init__(self, config: CompanionConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="cli-companion", daemon=True)
        self.ready = threading.Event()
        self.servers: list[Any] = []

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(30)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._listen())
        finally:
            self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._close())
        self.loop.close()

    async def _listen(self) -> None:
        from appliance.shell import legacy, sshd
        from appliance.shell.gate import Gate

        c = self.config
        gate = Gate(c.api_url, c.ca_file, c.state_root, c.companion_cert)
        if c.cli_listen is not None:
            host, port = c.cli_listen
            try:
                self.servers.append(await sshd.start(gate, host, port))
                log.info("CLI over SSH on %s:%d", host, port)
            except OSError as err:
                log.error(
                    "the CLI over SSH cannot listen on %s:%d: %s; the manager goes on without it",
                    host,
                    port,
                    err,
                )
        if c.legacy_listen is not None:
            host, port = c.legacy_listen
            try:
                tls = legacy.tls_context(c.tls_cert, c.tls_key)
                self.servers.append(await legacy.start(gate, host, port, tls, c.api_url))
                log.warning("DEPRECATED legacy TCPS API on %s:%d (use the WS-API)", host, port)
            except OSError as err:
                log.error("the legacy TCPS API cannot listen on %s:%d: %s", host, port, err)

    async def _close(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 5)
            except (TimeoutError, Exception):
                pass

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(15)


def attach(app: Any, rt: Any, options: Any) -> Callable[[], None] | None:
    """Companion hook (appliance.manager.companions): start the listeners the `serve` options ask for."""
    try:
        cli = listen_option(getattr(options, "cli_listen", DEFAULT_CLI_LISTEN), 10000)
        legacy = listen_option(getattr(options, "legacy_listen", None), DEFAULT_LEGACY_PORT)
    except ConfigError as err:
        raise ConfigError(f"--cli-listen/--legacy-listen: {err.message}", err.hint) from None
    if cli is None and legacy is None:
        return None
    listen = getattr(options, "listen", None) or rt.config.listen
    paths = rt.paths
    companion = CliCompanion(
        CompanionConfig(
            api_url=loopback_url(listen),
            ca_file=paths.ca_cert,
            state_root=paths.root / "cli",
            tls_cert=paths.server_cert,
            tls_key=paths.server_key,
            cli_listen=cli,
            legacy_listen=legacy,
            companion_cert=(paths.companion_cert, paths.companion_key),
        )
    )
    companion.start()
    return companion.stop
