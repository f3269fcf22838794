"""`appliance install ...` and `appliance ks ...` subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from appliance.installer.answers import ROLES
from appliance.installer.dialects import DIALECT_CHOICES


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _register_ks(sub)
    _register_install(sub)


def _register_ks(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("ks", help="check and inspect kickstart files")
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    commands.required = True

    validate = commands.add_parser(
        "validate", help="check kickstart files for a manager or server install (FILE:LINE: message)"
    )
    validate.add_argument("--role", choices=ROLES, required=True, help="the kind of host to install")
    validate.add_argument(
        "--dialect",
        choices=DIALECT_CHOICES,
        default="auto",
        help="kickstart grammar: rhel9 (current), ovm3 (Oracle VM Server 3.x, RHEL5 "
        "grammar) or auto (default: detect)",
    )
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.set_defaults(func=_cmd_validate)

    show = commands.add_parser(
        "answers", help="print the answers a kickstart gives, as JSON (secrets hidden)"
    )
    show.add_argument("--role", choices=ROLES, required=True)
    show.add_argument("--dialect", choices=DIALECT_CHOICES, default="auto")
    show.add_argument("file", type=Path, metavar="FILE")
    show.set_defaults(func=_cmd_answers)


def _cmd_validate(args: argparse.Namespace) -> int:
    from appliance.installer.validate import validate_kickstart_file  # pykickstart: imported when used

    failed = 0
    for path in args.files:
        result = validate_kickstart_file(path, args.role, args.dialect)
        for problem in result.problems:
            print(problem)
        if result.ok:
            print(
                f"{path}: ok ({args.role}, {result.dialect} grammar, {len(result.warnings)} warnings)",
                file=sys.stderr,
            )
        else:
            failed += 1
            print(f"{path}: {len(result.errors)} errors: nothing was installed or changed", file=sys.stderr)
    return 1 if failed else 0


def _cmd_answers(args: argparse.Namespace) -> int:
    from appliance.installer.validate import validate_kickstart_file

    result = validate_kickstart_file(args.file, args.role, args.dialect)
    for problem in result.problems:
        print(problem, file=sys.stderr)
    if result.answers is None:
        return 1
    print(json.dumps(result.answers.to_dict(), indent=2))
    return 0


def _register_install(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from appliance.installer.install_cli import register_install

    register_install(sub)
