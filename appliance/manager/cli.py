"""`appliance manager ...` subcommands."""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from appliance import pki
from appliance.manager.config import DEFAULT_PORT, StatePaths

STATE_HELP = "the manager's state directory (config, CA and certificates, backups)"


def _init(args: argparse.Namespace) -> int:
    from appliance.manager.setup import init

    result = init(
        args.state_dir,
        args.db_url,
        args.admin_password_file,
        args.name or [],
        args.keep_identity,
        args.start_db,
    )
    print(f"manager {result.manager_uuid} initialised in {args.state_dir}")
    print(f"schema revision: {result.schema_revision}")
    print(f"CA fingerprint (SHA-256): {result.ca_fingerprint}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from appliance.manager.service import serve

    return serve(args.state_dir, args.listen, args)


def _upgrade(args: argparse.Namespace) -> int:
    from appliance.manager.setup import upgrade

    before, after = upgrade(args.state_dir)
    print(f"schema: {before or 'empty'} -> {after}" if before != after else f"schema already at {after}")
    return 0


def _ca_fingerprint(args: argparse.Namespace) -> int:
    print(pki.fingerprint(pki.load_cert(StatePaths(args.state_dir).ca_cert)))
    return 0


def _token(args: argparse.Namespace) -> int:
    import datetime as dt

    from appliance.manager.config import load_config
    from appliance.manager.database import check_connection, make_engine
    from appliance.manager.trust import create_token

    cfg = load_config(StatePaths(args.state_dir))
    engine = make_engine(cfg.database, pool_size=1)
    try:
        check_connection(engine, cfg.database)
        with engine.begin() as conn:
            _, token, expires = create_token(
                conn, ttl=dt.timedelta(seconds=args.ttl), uses=args.uses, created_by="cli"
            )
    finally:
        engine.dispose()
    print(token)
    print(f"valid for {args.uses} use(s) until {expires:%Y-%m-%d %H:%M:%S} UTC", file=sys.stderr)
    return 0


def parse_duration(text: str) -> int:
    """`90s`, `30m`, `24h`, `7d` or plain seconds, 60 s to 30 days."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        seconds = int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 30m, 24h, 7d)") from None
    if not 60 <= seconds <= 30 * 86400:
        raise argparse.ArgumentTypeError("a token lives between 60 s and 30 days")
    return seconds


def _backup(args: argparse.Namespace) -> int:
    from appliance.manager import backup_cli

    return backup_cli.run(args)


def _up(args: argparse.Namespace) -> int:
    from appliance.manager.quickstart import up

    return up(args.workdir, args.listen)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("manager", help="run and administer the manager core")
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    commands.required = True

    p = commands.add_parser("init", help="create the schema, identity, first admin user, CA and certificate")
    p.add_argument("--state-dir", type=Path, required=True, help=STATE_HELP)
    p.add_argument(
        "--db-url",
        required=True,
        help="mysql://USER:PASSWORD@HOST:PORT/DBNAME (or ...@localhost/DBNAME?unix_socket=PATH)",
    )
    p.add_argument(
        "--admin-password-file", type=Path, required=True, help="file holding the password of `admin`"
    )
    p.add_argument(
        "--name", action="append", metavar="NAME", help="extra DNS name or IP for the TLS certificate"
    )
    p.add_argument(
        "--keep-identity",
        action="store_true",
        help="the state dir exists (UUID, CA): give it a new, empty database, e.g. after losing the old one; "
        "then POST /api/v1/servers/refresh-all rebuilds servers and VMs from the agents",
    )
    p.add_argument(
        "--start-db",
        type=Path,
        metavar="DATADIR",
        help="for installers: run a private MariaDB on DATADIR (e.g. /var/lib/mysql of the new host) while "
        "initialising, creating the database and user of --db-url in it",
    )
    p.set_defaults(func=_init)

    p = commands.add_parser("serve", help=f"serve the WS-API over HTTPS (default port {DEFAULT_PORT})")
    p.add_argument("--state-dir", type=Path, required=True, help=STATE_HELP)
    p.add_argument(
        "--listen", metavar="HOST:PORT", help="address to listen on (default: `listen` in manager.toml)"
    )
    p.add_argument(
        "--cli-listen",
        metavar="HOST:PORT",
        default="0.0.0.0:10000",
        help="the CLI over SSH (docs/cli.md; default 0.0.0.0:10000; `off` turns it off)",
    )
    p.add_argument(
        "--legacy-listen",
        metavar="HOST:PORT",
        default=None,
        help="DEPRECATED legacy TCPS API, e.g. 0.0.0.0:54322 (default: off; docs/cli.md)",
    )
    p.set_defaults(func=_serve)

    p = commands.add_parser("upgrade", help="apply new schema migrations (take a backup first)")
    p.add_argument("--state-dir", type=Path, required=True, help=STATE_HELP)
    p.set_defaults(func=_upgrade)

    p = commands.add_parser("ca-fingerprint", help="print the SHA-256 fingerprint of the manager CA")
    p.add_argument("--state-dir", type=Path, required=True, help=STATE_HELP)
    p.set_defaults(func=_ca_fingerprint)

    p = commands.add_parser("token", help="enrollment tokens for servers")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    create = actions.add_parser("create", help="make a one-time enrollment token and print it")
    create.add_argument("--state-dir", type=Path, required=True, help=STATE_HELP)
    create.add_argument(
        "--ttl", type=parse_duration, default=86400, help="lifetime, e.g. 30m, 24h (default), 7d"
    )
    create.add_argument(
        "--uses",
        type=int,
        default=1,
        choices=range(1, 1001),
        metavar="N",
        help="servers it may enrol (default 1)",
    )
    p.set_defaults(func=_token)

    p = commands.add_parser("backup", help="create, list, verify or restore database backups")
    p.add_argument("--state-dir", type=Path, required=True, help=STATE_HELP)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    actions.add_parser("create", help="take a backup now (the database must be up; the manager need not be)")
    actions.add_parser("list", help="list backups, newest first")
    for name, text in (
        ("verify", "check a backup's checksum and completeness"),
        ("restore", "replace the database with a backup (stop the manager first)"),
    ):
        a = actions.add_parser(name, help=text)
        a.add_argument("backup_id", metavar="ID")
    p.set_defaults(func=_backup)

    p = commands.add_parser(
        "up",
        help="start a private MariaDB and a manager in WORKDIR (first run initialises them) and print how to reach it",
    )
    p.add_argument(
        "--workdir", type=Path, default=Path("state"), help="directory for the database and manager state"
    )
    p.add_argument(
        "--listen", default=f"0.0.0.0:{DEFAULT_PORT}", metavar="HOST:PORT", help="WS-API listen address"
    )
    p.set_defaults(func=_up)


def random_password() -> str:
    return secrets.token_urlsafe(18)
