"""`appliance manager ...` subcommands."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("manager", help="run and administer the manager core")
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    commands.required = True
