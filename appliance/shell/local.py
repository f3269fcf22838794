"""`appliance cli`: the same shell on this machine, talking to a manager's WS-API over HTTPS."""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import sys
import threading
from pathlib import Path

from appliance.errors import UsageError
from appliance.shell.api import CommandError, WsApi, ca_context
from appliance.shell.engine import Engine, exit_status
from appliance.shell.session import Outcome

DEFAULT_MANAGER = "https://127.0.0.1:7002"
DEFAULT_STATE_DIR = Path("/var/lib/appliance/manager")
HISTORY = Path.home() / ".appliance_cli_history"
PROMPT = "appliance> "


def _password(args: argparse.Namespace) -> str:
    if args.password_file:
        try:
            return args.password_file.read_text().splitlines()[0]
        except (OSError, IndexError) as err:
            raise UsageError(
                f"cannot read a password from {args.password_file}: {err}",
                "put the password on its first line",
            ) from None
    if os.environ.get("APPLIANCE_PASSWORD"):
        return os.environ["APPLIANCE_PASSWORD"]
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {args.user} at {args.manager}: ")
    raise UsageError(
        f"no password for {args.user}",
        "use --password-file FILE, set APPLIANCE_PASSWORD, or run on a terminal to be asked",
    )


def _ca_file(args: argparse.Namespace) -> Path:
    if args.ca:
        return Path(args.ca)
    return Path(args.state_dir) / "tls" / "ca.crt"


def connect(args: argparse.Namespace) -> WsApi:
    api = WsApi(args.manager, ca_context(_ca_file(args)))
    try:
        api.login(args.user, _password(args))
    except CommandError:
        api.close()
        raise
    return api


def _print(outcome: Outcome) -> None:
    out, err = outcome.render()
    if out:
        print(out, flush=True)
    if err:
        print(err, file=sys.stderr, flush=True)


def run_interruptible(engine: Engine, line: str) -> list[Outcome]:
    """Run in a worker thread so Ctrl-C only stops waiting for a job (the job goes on)."""
    result: list[list[Outcome]] = []
    worker = threading.Thread(target=lambda: result.append(engine.run_line(line)), daemon=True)
    worker.start()
    while worker.is_alive():
        try:
            worker.join(0.2)
        except KeyboardInterrupt:
            engine.cancel.set()
    return result[0] if result else []


def interactive(engine: Engine) -> int:
    try:
        import readline
    except ImportError:  # pragma: no cover - CPython on Linux has it
        readline = None  # type: ignore[assignment]
    if readline is not None:
        readline.set_completer_delims(" \t")
        readline.parse_and_bind("tab: complete")
        candidates: list[str] = []

        def completer(_text: str, state: int) -> str | None:
            nonlocal candidates
            if state == 0:
                candidates = engine.complete(readline.get_line_buffer()[: readline.get_endidx()])
            if state >= len(candidates):
                return None
            word = candidates[state]
            return word if word.endswith("=") or len(candidates) > 1 else word + " "

        readline.set_completer(completer)
        try:
            readline.read_history_file(HISTORY)
        except OSError:
            pass
    _ = engine.schema  # completion uses the live attribute names
    print(
        f"Appliance manager CLI: {engine.api.user} ({engine.api.role}) at {engine.api.url}. "
        "`help` lists the commands, Tab completes, `exit` leaves."
    )
    try:
        while True:
            try:
                line = input(PROMPT)
            except KeyboardInterrupt:
                print("^C")
                continue
            except EOFError:
                print()
                break
            if not line.strip():
                continue
            outcomes = run_interruptible(engine, line)
            for outcome in outcomes:
                _print(outcome)
            if any(o.exit for o in outcomes):
                break
    finally:
        if readline is not None:
            try:
                readline.write_history_file(HISTORY)
            except OSError:
                pass
    return 0


def _run(args: argparse.Namespace) -> int:
    api = connect(args)
    try:
        engine = Engine(api, progress=lambda line: print(line, file=sys.stderr, flush=True))
        if args.json:
            engine.settings.output_mode = "json"
        if not args.words:
            return interactive(engine)
        outcomes = run_interruptible(engine, shlex.join(args.words) if len(args.words) > 1 else args.words[0])
        for outcome in outcomes:
            _print(outcome)
        return exit_status(outcomes)
    finally:
        api.close()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "cli",
        help="the manager's command shell (the same commands as `ssh -p 10000 USER@MANAGER`)",
        description="Run one command (`appliance cli list Vm`) or, with none, an interactive shell.",
    )
    p.add_argument(
        "--manager",
        default=os.environ.get("APPLIANCE_MANAGER", DEFAULT_MANAGER),
        metavar="URL",
        help=f"the manager's WS-API (default $APPLIANCE_MANAGER or {DEFAULT_MANAGER})",
    )
    p.add_argument(
        "--user",
        default=os.environ.get("APPLIANCE_USER", "admin"),
        help="manager user (default $APPLIANCE_USER or admin)",
    )
    p.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="read the password from FILE (else $APPLIANCE_PASSWORD or a prompt)",
    )
    p.add_argument(
        "--ca",
        default=os.environ.get("APPLIANCE_CA"),
        metavar="FILE",
        help="the manager CA certificate (default $APPLIANCE_CA, else STATE_DIR/tls/ca.crt)",
    )
    p.add_argument(
        "--state-dir",
        default=str(DEFAULT_STATE_DIR),
        metavar="DIR",
        help=f"a local manager's state directory, for its CA (default {DEFAULT_STATE_DIR})",
    )
    p.add_argument("--json", action="store_true", help="JSON output (like `set outputMode=json`)")
    p.add_argument("words", nargs=argparse.REMAINDER, metavar="COMMAND", help="a shell command, e.g. list Vm")
    p.set_defaults(func=_run)
