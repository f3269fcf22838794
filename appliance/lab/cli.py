"""``appliance lab up|status|ssh|down``: a manager and N Xen servers in nested QEMU on this machine.

`lab up` starts a supervisor process (`lab run`, detached) that owns the QEMUs, follows its log
until the lab is ready, and prints how to reach it. The supervisor keeps the lab running until
`lab down`, which powers the hosts off.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from appliance.errors import ExternalCommandError, UsageError
from appliance.lab.status import live_status, process_alive

DEFAULT_WORKDIR = Path("lab")
LOG_FILE = "lab.log"
DOWN_TIMEOUT = 300  # the supervisor waits up to 180 s for the hosts to power off


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lab = sub.add_parser("lab", help="a manager and Xen servers installed from the ISOs in nested QEMU")
    verbs = lab.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    def with_workdir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--workdir",
            type=Path,
            default=DEFAULT_WORKDIR,
            help=f"the lab's folder: status, logs, consoles, SSH key (default ./{DEFAULT_WORKDIR})",
        )
        return p

    up = with_workdir(
        verbs.add_parser("up", help="build or reuse the ISOs, install or reuse the hosts, boot them")
    )
    up.add_argument("--servers", type=int, default=2, help="how many Xen servers (1-8, default 2)")
    up.add_argument(
        "--timeout", type=float, default=7200, help="give up after this many seconds (default 7200)"
    )
    up.set_defaults(func=cmd_up)
    run = with_workdir(verbs.add_parser("run", help="run the lab in the foreground (what `lab up` starts)"))
    run.add_argument("--servers", type=int, default=2)
    run.set_defaults(func=cmd_run)
    with_workdir(verbs.add_parser("status", help="the lab's state, URLs and credentials")).set_defaults(
        func=cmd_status
    )
    ssh = with_workdir(verbs.add_parser("ssh", help="ssh to a lab host as root"))
    ssh.add_argument("name", help="manager, server1, server2, ...")
    ssh.add_argument("command", nargs=argparse.REMAINDER, help="a command to run instead of a shell")
    ssh.set_defaults(func=cmd_ssh)
    with_workdir(verbs.add_parser("down", help="power the lab's hosts off")).set_defaults(func=cmd_down)


def _check_servers(n: int) -> None:
    if not 1 <= n <= 8:
        raise UsageError(f"--servers {n}: a lab has 1 to 8 servers", "give --servers 1 ... 8")


def cmd_up(args: argparse.Namespace) -> int:
    _check_servers(args.servers)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    current = live_status(workdir)
    if current is not None and current.state in ("starting", "ready", "stopping"):
        print("\n".join(current.describe()))
        print(f"the lab in {workdir} is already {current.state}; `appliance lab down --workdir {args.workdir}` "
              "stops it")  # fmt: skip
        return 0
    log = workdir / LOG_FILE
    cmd = [sys.executable, "-m", "appliance", "lab", "run", "--workdir", str(workdir),
           "--servers", str(args.servers)]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
    print(f"lab: supervisor pid {proc.pid}; its log is {log}", flush=True)
    return _follow(workdir, log, proc, args.timeout)


def _follow(workdir: Path, log: Path, proc: subprocess.Popen[bytes], timeout: float) -> int:
    """Print the supervisor's log as it grows until the lab is ready or the supervisor stops."""
    deadline = time.monotonic() + timeout
    with log.open() as reader:
        while True:
            for line in reader:
                print(line, end="", flush=True)
            status = live_status(workdir)
            if status is not None and status.state == "ready":
                print("\n".join(["", *status.describe()]))
                return 0
            if proc.poll() is not None:
                print(reader.read(), end="")
                raise ExternalCommandError(f"the lab did not come up (supervisor exit {proc.returncode})",
                                           f"see {log} and the consoles in {workdir / 'results'}")  # fmt: skip
            if time.monotonic() > deadline:
                raise ExternalCommandError(f"the lab was not ready after {timeout:.0f} s; it is still starting",
                                           "follow `appliance lab status`, or `appliance lab down`")  # fmt: skip
            time.sleep(1)


def cmd_run(args: argparse.Namespace) -> int:
    _check_servers(args.servers)
    from appliance.lab.supervisor import run_lab  # QEMU harness: imported only when a lab runs

    return run_lab(args.workdir.resolve(), args.servers)


def cmd_status(args: argparse.Namespace) -> int:
    status = live_status(args.workdir.resolve())
    if status is None:
        print(f"no lab in {args.workdir} (start one with `appliance lab up --workdir {args.workdir}`)")
        return 3
    print("\n".join(status.describe()))
    return 0 if status.state == "ready" else 3


def leading_workdir(command: list[str]) -> tuple[Path | None, list[str]]:
    """``lab ssh NAME --workdir DIR CMD...``: the remainder after NAME may still start with the
    --workdir option (as the other verbs take it after their arguments)."""
    if command[:1] == ["--workdir"] and len(command) >= 2:
        return Path(command[1]), command[2:]
    if command and command[0].startswith("--workdir="):
        return Path(command[0].split("=", 1)[1]), command[1:]
    return None, command


def cmd_ssh(args: argparse.Namespace) -> int:
    given, args.command = leading_workdir(args.command)
    if given is not None:
        args.workdir = given
    workdir = args.workdir.resolve()
    status = live_status(workdir)
    if status is None or status.state not in ("ready", "starting"):
        raise UsageError(
            f"no running lab in {workdir}", f"start it with `appliance lab up --workdir {args.workdir}`"
        )
    port = status.host(args.name).ports.get("22")
    if port is None:
        raise UsageError(
            f"{args.name} has no SSH port forwarded yet", "wait for `appliance lab status` to say ready"
        )
    cmd = ["ssh", "-i", str(workdir / "id_ed25519"), "-p", str(port), "-o", "StrictHostKeyChecking=no",
           "-o", f"UserKnownHostsFile={workdir / 'known_hosts'}", "-o", "LogLevel=ERROR", "root@127.0.0.1",
           *args.command]  # fmt: skip
    os.execvp(cmd[0], cmd)


def cmd_down(args: argparse.Namespace) -> int:
    workdir = args.workdir.resolve()
    status = live_status(workdir)
    if status is None or status.state == "down":
        print(f"no lab is running in {workdir}")
        return 0
    os.kill(status.pid, signal.SIGTERM)
    print(f"lab: powering the hosts off (supervisor pid {status.pid}) ...", flush=True)
    deadline = time.monotonic() + DOWN_TIMEOUT
    while process_alive(status.pid) and time.monotonic() < deadline:
        time.sleep(1)
    if process_alive(status.pid):
        raise ExternalCommandError(f"the supervisor (pid {status.pid}) is still running after {DOWN_TIMEOUT} s",
                                   f"kill it: kill -9 {status.pid}; its QEMUs end with it")  # fmt: skip
    print("lab: down")
    return 0
