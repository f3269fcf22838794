"""The ``appliance`` command: one entry point, one subcommand group per component."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from appliance.errors import ApplianceError

# Each module exposes ``register(subparsers)``; its subcommands set ``func(args) -> int``.
COMMAND_GROUPS = [
    "appliance.manager.cli",
    "appliance.images.cli",
    "appliance.server.cli",
    "appliance.installer.cli",
    "appliance.shell.local",
    "appliance.lab.cli",
]
# The command names each module registers: running one imports only its module (the live ISO's
# installer starts under slow emulation; the manager's modules pull in SQLAlchemy and friends).
COMMANDS = {
    "manager": "appliance.manager.cli",
    "build": "appliance.images.cli",
    "iso": "appliance.images.cli",
    "agent": "appliance.server.cli",
    "ks": "appliance.installer.cli",
    "install": "appliance.installer.cli",
    "cli": "appliance.shell.local",
    "lab": "appliance.lab.cli",
}


def groups_for(argv: Sequence[str]) -> list[str]:
    """The modules to register for this command line: the named command's, or all (help, typos)."""
    command = next((word for word in argv if not word.startswith("-")), None)
    if command in COMMANDS:
        return [COMMANDS[command]]
    return COMMAND_GROUPS


class _VersionAction(argparse.Action):
    """--version, read from the package metadata only when asked (importlib.metadata is slow to load)."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> None:
        from appliance import __version__

        print(f"appliance {__version__}")
        parser.exit()


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv`` (default: every command)."""
    parser = argparse.ArgumentParser(
        prog="appliance",
        description="Build, install and run manager and server appliance hosts.",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="group", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_GROUPS if argv is None else groups_for(argv):
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("alembic", "mysql.connector"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except ApplianceError as err:
        print(f"appliance: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("appliance: interrupted", file=sys.stderr)
        return 130
