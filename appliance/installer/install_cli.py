"""`appliance install`: find the answers, validate them, show the plan, then run the install steps."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from appliance.errors import ConfigError, UsageError
from appliance.installer.answers import ROLES, Answers, Role
from appliance.installer.boot_wait import wait_for_disks, wait_for_early_boot
from appliance.installer.cleanup import CleanupStack
from appliance.installer.console_session import act_on_host, run_on_console
from appliance.installer.dialects import DIALECT_CHOICES
from appliance.installer.disks import Disk, describe_target, list_candidate_disks
from appliance.installer.install import InstallContext, check_target, make_plan, run_install
from appliance.installer.interactive import Prompter, ask_answers, confirm_erase, network_interfaces
from appliance.installer.layout import Layout
from appliance.installer.runner import InstallLog
from appliance.installer.sources import (
    LIVE_MEDIUM,
    BootOptions,
    fetch_kickstart,
    find_oemdrv_kickstart,
    parse_cmdline,
)
from appliance.live_medium import SQUASHFS

LIVE_ROOT = Path("/run/live/rootfs/filesystem.squashfs")
IMAGE_INFO = Path("/etc/appliance/image.json")
DEFAULT_LOG = Path("/var/log/appliance-install.log")
EMBEDDED_KS = "ks.cfg"  # a kickstart the image builder embedded at the root of the ISO


def register_install(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("install", help="install this live system onto a disk (kickstart or interactive)")
    p.add_argument("--ks", metavar="SOURCE",
                   help="kickstart: FILE, cdrom:/PATH, hd:LABEL=NAME:/PATH or http(s)://URL "
                        "(default: ks= on the kernel command line, then an OEMDRV disk, then questions)")
    p.add_argument("--ks-sha256", metavar="HEX", help="pin the kickstart's SHA-256 (as ks.sha256=)")
    p.add_argument("--ks-tlsfp", metavar="SHA256", help="pin the https server's certificate (as ks.tlsfp=)")
    p.add_argument("--target-disk", metavar="DEV", help="disk to erase and install onto (overrides the kickstart)")
    p.add_argument("--dry-run", action="store_true", help="validate and show the plan; touch no disk")
    p.add_argument("--role", choices=ROLES,
                   help="manager or server (default: appliance.role= on the kernel command line, "
                        f"then 'role' in {IMAGE_INFO})")
    p.add_argument("--dialect", choices=DIALECT_CHOICES, default="auto", help="kickstart grammar (see ks validate)")
    p.add_argument("--source-root", type=Path,
                   help=f"root filesystem to copy (default: the live image's, {LIVE_ROOT})")
    p.add_argument("--medium", type=Path, default=LIVE_MEDIUM,
                   help=f"the live medium, whose live/vmlinuz and live/initrd.img become the installed "
                        f"system's kernel when the root filesystem has none in /boot (default {LIVE_MEDIUM})")
    p.add_argument("--log", type=Path, default=DEFAULT_LOG, help=f"install log (default {DEFAULT_LOG})")
    p.add_argument("--no-finish", action="store_true",
                   help="do not reboot or power off at the end, whatever the answers say")
    p.add_argument("--console", action="store_true",
                   help="run as the live ISO's console installer: when the install stops, wait for a "
                        "choice (again, shell, reboot, power off) instead of exiting")
    p.add_argument("--kernel-cmdline", type=Path, default=Path("/proc/cmdline"), help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_install)


def detect_role(args: argparse.Namespace, boot: BootOptions) -> Role:
    for value in (args.role, boot.role):
        if value in ROLES:
            return value
    if IMAGE_INFO.is_file():
        try:
            role = json.loads(IMAGE_INFO.read_text(encoding="utf-8")).get("role")
        except (OSError, ValueError):
            role = None
        if role in ROLES:
            return role
    raise UsageError("cannot tell whether to install a manager or a server",
                     "give --role manager|server (or boot with appliance.role=...)")


def _source_root(args: argparse.Namespace) -> Path:
    root = args.source_root or LIVE_ROOT
    if not (root / "etc").is_dir():
        raise UsageError(f"no root filesystem to copy at {root}",
                         "run the installer from the live ISO, or give --source-root DIR")
    return root


def _source_image(args: argparse.Namespace) -> Path | None:
    """The live medium's squashfs image when the source is the live root mounted from it."""
    image = args.medium / SQUASHFS
    return image if args.source_root is None and image.is_file() else None


def _kickstart_answers(args: argparse.Namespace, boot: BootOptions, role: Role) -> Answers | None:
    """Answers from a kickstart, or None when there is none (then the questions are asked)."""
    if args.ks:
        text, name = fetch_kickstart(args.ks, sha256=args.ks_sha256, tlsfp=args.ks_tlsfp)
    elif boot.ks:
        text, name = fetch_kickstart(boot.ks, sha256=boot.ks_sha256, tlsfp=boot.ks_tlsfp)
    elif boot.auto and (LIVE_MEDIUM / EMBEDDED_KS).is_file():
        text, name = fetch_kickstart(f"cdrom:/{EMBEDDED_KS}")
    else:
        found = find_oemdrv_kickstart()
        if found is None:
            if boot.auto:
                raise UsageError("inst.auto asks for an unattended install but no kickstart was found "
                                 "(no ks=, no ks.cfg on the medium, no OEMDRV disk); no disk was touched",
                                 "boot the interactive entry, or give ks=... on the kernel command line")
            return None
        text, name = found
    print(f"kickstart: {name}", flush=True)
    from appliance.installer.validate import validate_kickstart  # pykickstart: only with a kickstart

    result = validate_kickstart(text, name, role, args.dialect)
    for problem in result.problems:
        print(problem, flush=True)
    if result.answers is None or result.errors:
        raise UsageError(f"the kickstart {name} has {len(result.errors)} errors; no disk was touched",
                         f"fix the lines above (check with: appliance ks validate --role {role} FILE)")
    return result.answers


def _pick_disk(args: argparse.Namespace, answers: Answers) -> Disk:
    if args.target_disk:
        return describe_target(args.target_disk)
    if answers.target_disk:
        return describe_target(answers.target_disk)
    disks = list_candidate_disks()
    if len(disks) == 1:
        return disks[0]
    listing = "; ".join(d.describe() for d in disks) or "none found"
    raise UsageError(f"the kickstart names no disk and there are {len(disks)} candidates ({listing})",
                     "add --drives=DISK to clearpart in the kickstart, or give --target-disk DEV")


def summary(answers: Answers, disk: Disk, layout: Layout) -> list[str]:
    net = answers.network
    address = "DHCP" if net.bootproto == "dhcp" else f"{net.address}/{net.prefix} via {net.gateway or '-'}"
    lines = [
        f"Role:       {answers.role}",
        f"Disk:       {disk.describe()}  (ERASED)",
        *[f"            {row}" for row in layout.describe()],
        f"Host name:  {answers.hostname}",
        f"Network:    {net.device or 'first Ethernet port'}, {address}",
        f"Time zone:  {answers.timezone}",
        f"Root login: {'password' if answers.root_password_hash else 'locked'}"
        f"{', ' + str(len(answers.ssh_keys)) + ' SSH key(s)' if answers.ssh_keys else ''}",
    ]
    if answers.server is not None:
        enrol = answers.server.enrollment
        lines.append(f"Manager:    {enrol.manager_url + ' (enrol at install)' if enrol else 'none (discover later)'}")
    lines.append(f"At the end: {answers.finish}")
    return lines


SHUTDOWN_WAIT_S = 300.0


def _finish(action: str, pause_s: float) -> None:
    commands = {"reboot": ["reboot"], "poweroff": ["poweroff"], "halt": ["halt"]}
    if action not in commands:
        print("Remove the install medium and reboot when ready.", flush=True)
        return
    if pause_s:
        print(f"{action} in {pause_s:.0f} seconds...", flush=True)
        time.sleep(pause_s)
    else:
        print(f"{action} now", flush=True)
    systemctl = shutil.which("systemctl")
    cmd = [systemctl, action] if systemctl and Path("/run/systemd/system").is_dir() else [*commands[action], "-f"]
    if subprocess.run(cmd, check=False).returncode == 0:
        # systemctl only queues the shutdown: wait for it here rather than ask "what next?" meanwhile
        time.sleep(SHUTDOWN_WAIT_S)
    print(f"the system did not {action}; do it by hand (the install itself is complete)", flush=True)


INSTALL_LOCK = Path("/run/appliance-install.lock")


def take_install_lock(disk: str, path: Path = INSTALL_LOCK) -> int:
    """One install at a time: the live ISO runs the installer on tty1 and on the serial console."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UsageError("another install is already running (on another console)",
                         "let it finish, or stop it there; nothing was written here") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {disk}\n".encode())
    return fd


def _interfaces_after_early_boot() -> list[tuple[str, str]]:
    wait_for_early_boot()
    return network_interfaces()


def _cmd_install(args: argparse.Namespace) -> int:
    if args.console:
        wait_for_disks()  # the live unit starts early in the boot
        return run_on_console(lambda: _install(args), sys.stdin, sys.stdout, act_on_host)
    return _install(args)


def _install(args: argparse.Namespace) -> int:
    boot = parse_cmdline(args.kernel_cmdline.read_text(encoding="utf-8") if args.kernel_cmdline.exists() else "")
    role = detect_role(args, boot)
    source_root = _source_root(args)
    answers = _kickstart_answers(args, boot, role)
    interactive = answers is None
    prompter = Prompter()
    if answers is None:
        if not sys.stdin.isatty() and not args.dry_run:
            raise UsageError("no kickstart was found and there is no terminal to ask questions on",
                             "give --ks SOURCE or boot with ks=...; or run the installer on a console")
        disks = None if args.target_disk else list_candidate_disks()
        interfaces = _interfaces_after_early_boot if args.console else network_interfaces
        answers, chosen = ask_answers(prompter, role, disks, interfaces)
        disk = describe_target(args.target_disk) if args.target_disk else chosen
        assert disk is not None
    else:
        if args.console:
            wait_for_early_boot()  # %pre scripts may need a NIC (not in the initramfs); the install, /tmp
        disk = _pick_disk(args, answers)
    answers = answers.with_target_disk(disk.path)
    check_target(disk)
    image = _source_image(args)
    layout = make_plan(answers, disk, source_root, args.medium, image)
    print("\n".join(["", "Install plan:", *summary(answers, disk, layout), ""]), flush=True)
    if args.dry_run:
        print("dry run: the answers are valid and the plan fits; no disk was touched", flush=True)
        return 0
    if interactive and not confirm_erase(prompter, disk):
        print("stopped: nothing was written", flush=True)
        return 1
    lock = take_install_lock(disk.path)
    try:
        log = InstallLog(args.log)
    except OSError as err:
        raise ConfigError(f"cannot write the install log {args.log}: {err.strerror}", "give --log FILE") from err
    log.write(f"install of a {role} onto {disk.path}; answers: {json.dumps(answers.to_dict())}")
    ctx = InstallContext(answers=answers, disk=disk, layout=layout, source_root=source_root, log=log,
                         cleanup=CleanupStack(log.write), say=lambda m: print(m, flush=True),
                         medium=args.medium, source_image=image)
    try:
        run_install(ctx)
    finally:
        log.close()
        os.close(lock)
    print(f"The {role} is installed on {disk.path}. Install log: {args.log} "
          "(also /var/log/appliance-install.log on the installed system).", flush=True)
    if not args.no_finish:
        _finish(answers.finish, pause_s=5.0 if interactive else 0.0)  # a kickstart asked for it
    return 0
