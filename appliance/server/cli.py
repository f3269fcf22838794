"""``appliance agent ...``: run the server agent and manage its local state."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from appliance.errors import UsageError
from appliance.server import config as cfg
from appliance.server import tls

log = logging.getLogger(__name__)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT``, ``:PORT`` or ``HOST`` → (host, port)."""
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UsageError(f"--listen {text!r}: missing ']'", "write IPv6 addresses as [::1]:8899")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise UsageError(f"--listen {text!r} is not HOST:PORT", None)
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif ":" in text:
        raise UsageError(f"--listen {text!r}: IPv6 addresses need brackets", "write [::]:8899")
    host = host or cfg.DEFAULT_LISTEN_HOST
    if not port_text:
        return host, cfg.DEFAULT_PORT
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"--listen {text!r}: port must be a number from 0 to 65535", None)
    return host, int(port_text)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be greater than 0")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("agent", help="the server agent (XML-RPC over HTTPS on port 8899)")
    agent_sub = parser.add_subparsers(dest="agent_command", metavar="ACTION")
    agent_sub.required = True

    serve = agent_sub.add_parser("serve", help="run the agent until stopped (SIGTERM/SIGINT)")
    serve.add_argument(
        "--state-dir", type=Path, required=True, help="agent state (DB, TLS key, certificates)"
    )
    serve.add_argument(
        "--listen",
        default=f"{cfg.DEFAULT_LISTEN_HOST}:{cfg.DEFAULT_PORT}",
        help="HOST:PORT (default 0.0.0.0:8899)",
    )
    serve.add_argument(
        "--hypervisor",
        default=None,
        help="libvirt URI (default xen:///system in a Xen dom0, else qemu:///system; test:///default for tests)",
    )
    serve.add_argument(
        "--qemu-accel", choices=("tcg", "kvm"), default="tcg", help="QEMU guests: tcg (default) or kvm"
    )
    serve.add_argument(
        "--max-request-bytes",
        type=_positive,
        default=cfg.Limits.max_request_bytes,
        help="largest XML-RPC request",
    )
    serve.add_argument(
        "--outbox-max-events",
        type=_positive,
        default=cfg.OutboxLimits.max_events,
        help="events kept for the manager",
    )
    serve.add_argument(
        "--outbox-max-samples",
        type=_positive,
        default=cfg.OutboxLimits.max_samples,
        help="statistics samples kept for the manager",
    )
    serve.set_defaults(func=_serve)

    pw = agent_sub.add_parser("set-password", help="set the agent password (read from stdin or a file)")
    pw.add_argument("--state-dir", type=Path, required=True)
    pw.add_argument("--password-file", type=Path, help="read the password from this file (first line)")
    pw.add_argument(
        "--crypted",
        action="store_true",
        help="the input is already a crypt(3) SHA-512 hash ($6$...), as with ovsagent --iscrypted",
    )
    pw.set_defaults(func=_set_password)

    enroll = agent_sub.add_parser(
        "enroll",
        help="trust one manager: pin its CA by fingerprint, get a certificate with an enrollment token",
    )
    enroll.add_argument(
        "--state-dir", type=Path, required=True, help="agent state (DB, TLS key, certificates)"
    )
    enroll.add_argument(
        "--manager", required=True, metavar="URL", help="the manager, e.g. https://manager:7002"
    )
    enroll.add_argument(
        "--fingerprint", required=True, metavar="SHA256", help="the manager CA's SHA-256 fingerprint"
    )
    enroll.add_argument(
        "--token", required=True, help="an enrollment token (`appliance manager token create`)"
    )
    enroll.add_argument(
        "--address",
        help="address the manager uses to reach this agent (default: the local "
        "address of the connection to the manager)",
    )
    enroll.add_argument(
        "--agent-port", type=int, default=cfg.DEFAULT_PORT, help="the agent's port (default 8899)"
    )
    enroll.add_argument("--hostname", help="this server's name in the manager (default: the host name)")
    enroll.set_defaults(func=_enroll)

    status = agent_sub.add_parser("status", help="print the agent's identity, ownership and outbox as JSON")
    status.add_argument("--state-dir", type=Path, required=True)
    status.set_defaults(func=_status)


def _config(args: argparse.Namespace) -> cfg.AgentConfig:
    host, port = parse_listen(args.listen)
    return cfg.AgentConfig(
        state_dir=args.state_dir,
        listen_host=host,
        listen_port=port,
        hypervisor_uri=args.hypervisor or cfg.default_hypervisor_uri(),
        qemu_accel=args.qemu_accel,
        limits=cfg.Limits(max_request_bytes=args.max_request_bytes),
        outbox=cfg.OutboxLimits(max_events=args.outbox_max_events, max_samples=args.outbox_max_samples),
    )


def _serve(args: argparse.Namespace) -> int:
    from appliance.server.agent import Agent  # libvirt is imported only when serving

    config = _config(args)
    agent = Agent(config)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        agent.start()
    except OSError as err:
        agent.stop()
        raise UsageError(
            f"cannot listen on {config.listen_host}:{config.listen_port}: {err.strerror}",
            "stop the other process on that port or choose another with --listen",
        ) from err
    fingerprint = tls.fingerprint_sha256(config.paths.certificate.read_bytes())
    print(
        f"agent {agent.server_uuid} listening on https://{config.listen_host}:{agent.port}/"
        f" (hypervisor {config.hypervisor_uri}; certificate SHA-256 {fingerprint})",
        flush=True,
    )
    stop.wait()
    print("agent stopping (guests keep running)", flush=True)
    agent.stop()
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        try:
            text = args.password_file.read_text()
        except OSError as err:
            raise UsageError(f"cannot read {args.password_file}: {err.strerror}", "check the path") from err
    elif sys.stdin.isatty():
        text = getpass.getpass("agent password: ")
        if getpass.getpass("again: ") != text:
            raise UsageError("the two passwords differ", "run the command again")
    else:
        text = sys.stdin.read()
    lines = text.splitlines()
    return lines[0] if lines else ""


def _set_password(args: argparse.Namespace) -> int:
    from appliance.server.passwords import check_crypted, hash_password
    from appliance.server.store import Store

    secret = _read_password(args)
    hashed = check_crypted(secret) if args.crypted else hash_password(secret)
    paths = cfg.StatePaths(args.state_dir)
    paths.ensure()
    store = Store(paths.database)
    try:
        store.ensure_server_uuid()
        store.set_meta("password_hash", hashed)
    finally:
        store.close()
    print(f"agent password set in {paths.database}")
    return 0


def _enroll(args: argparse.Namespace) -> int:
    from appliance.server.enroll import EnrollRequest, enroll

    config = cfg.AgentConfig(state_dir=args.state_dir)
    result = enroll(
        config,
        EnrollRequest(
            args.manager, args.fingerprint, args.token, args.address, args.agent_port, args.hostname
        ),
    )
    print(f"server {result['server_uuid']} enrolled with manager {result['manager_uuid']}")
    print("start (or restart) the agent to use the new trust")
    return 0


def _status(args: argparse.Namespace) -> int:
    from appliance.server.store import EVENT, SAMPLE, Store

    paths = cfg.StatePaths(args.state_dir)
    if not paths.database.exists():
        raise UsageError(
            f"{paths.database} does not exist", "run `appliance agent serve` or set-password first"
        )
    store = Store(paths.database)
    try:
        own = store.get_ownership()
        out = {
            "server_uuid": store.get_meta("server_uuid"),
            "password_set": store.get_meta("password_hash") is not None,
            "owned": own is not None,
            "manager_uuid": own.manager_uuid if own else "",
            "event_url": own.event_url if own else "",
            "statistics_url": own.statistics_url if own else "",
            "vms": len(store.list_vms()),
            "outbox": {"events": store.count(EVENT), "samples": store.count(SAMPLE)},
            "certificate_fingerprint": (
                tls.fingerprint_sha256(paths.certificate.read_bytes()) if paths.certificate.exists() else ""
            ),
        }
    finally:
        store.close()
    print(json.dumps(out, indent=2))
    return 0
