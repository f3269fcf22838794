"""Turn a parsed kickstart into ``Answers``, reporting what the appliance cannot honour.

Pure logic over the pykickstart handler; the only side effect is hashing plain-text passwords.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pykickstart.constants import (
    CLEARPART_TYPE_ALL,
    CLEARPART_TYPE_LIST,
    KS_SCRIPT_POST,
    KS_SCRIPT_PRE,
)

from appliance.installer.answers import (
    MANAGER_DB_MOUNTPOINT,
    Answers,
    Enrollment,
    FinishAction,
    ManagerAnswers,
    NetworkAnswers,
    PartitionAnswer,
    Role,
    Script,
    ServerAnswers,
)
from appliance.installer.checks import (
    MIN_ADMIN_PASSWORD,
    normalize_fingerprint,
    valid_fingerprint,
    valid_hostname,
    valid_manager_url,
)
from appliance.installer.ks_parse import ParsedKickstart, Problem
from appliance.installer.passwords import looks_like_crypt_hash, sha512_crypt

# Standard commands the installer acts on.
HONOURED = {
    "rootpw",
    "network",
    "timezone",
    "keyboard",
    "lang",
    "clearpart",
    "zerombr",
    "ignoredisk",
    "part",
    "partition",
    "autopart",
    "bootloader",
    "sshkey",
    "reboot",
    "poweroff",
    "halt",
    "shutdown",
    "ovsagent",
    "ovsmgmntif",
    "enroll",
    "manageradmin",
}
# Accepted, with a warning naming the line: they make no sense for an appliance image.
IGNORED = {
    "install": "the appliance installs its own image, not from an install source",
    "upgrade": "the appliance installs its own image, not from an install source",
    "nfs": "the appliance installs its own image, not from an install source",
    "url": "the appliance installs its own image, not from an install source",
    "cdrom": "the appliance installs its own image, not from an install source",
    "harddrive": "the appliance installs its own image, not from an install source",
    "liveimg": "the appliance installs its own image, not from an install source",
    "method": "the appliance installs its own image, not from an install source",
    "repo": "the appliance installs its own image, not from package repositories",
    "firewall": "the appliance configures its own firewall",
    "auth": "the appliance keeps its own authentication set-up",
    "authconfig": "the appliance keeps its own authentication set-up",
    "authselect": "the appliance keeps its own authentication set-up",
    "selinux": "the appliance does not use SELinux",
    "text": "the installer always uses plain text prompts",
    "cmdline": "the installer always uses plain text prompts",
    "graphical": "the installer always uses plain text prompts",
    "interactive": "use 'appliance install' without a kickstart for interactive mode",
    "autostep": "the installer always uses plain text prompts",
    "skipx": "the appliance has no X server",
    "xconfig": "the appliance has no X server",
    "monitor": "the appliance has no X server",
    "mouse": "the appliance has no X server",
    "firstboot": "the appliance has no first-boot wizard",
    "services": "the appliance enables its own services",
    "key": "the appliance needs no installation key",
    "langsupport": "the image carries its own locales",
    "logging": "the installer keeps its own log (saved on the target)",
    "mediacheck": "check the medium with the boot menu instead",
    "deviceprobe": "devices are found by udev",
    "vnc": "the installer runs on the console and the serial port",
    "eula": "no end-user licence agreement to accept",
    "unsupported_hardware": "no hardware check to skip",
    "timesource": "time sources are configured after install",
}
# Everything else (raid, logvol, volgroup, btrfs, iscsi, user, ...) is an error: we cannot honour it.

_FINISH_COMMANDS: dict[str, FinishAction] = {
    "reboot": "reboot",
    "poweroff": "poweroff",
    "shutdown": "poweroff",
    "halt": "halt",
}
_IFACE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$|^([0-9a-f]{2}:){5}[0-9a-f]{2}$", re.IGNORECASE)
_SSH_KEY_RE = re.compile(r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-\S+|sk-\S+)\s+[A-Za-z0-9+/=]+(\s.*)?$")
_SUPPORTED_FSTYPES = {"ext4", "ext3", "ext2", "swap", "vfat", "efi", "biosboot"}


def disk_path(name: str) -> str:
    return name if name.startswith("/dev/") else f"/dev/{name}"


@dataclass
class _Collector:
    filename: str
    problems: list[Problem] = field(default_factory=list)

    def error(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.filename, line, "error", message))

    def warning(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.filename, line, "warning", message))


def answers_from_kickstart(
    parsed: ParsedKickstart,
    role: Role,
    filename: str,
    hasher: Callable[[str], str] = sha512_crypt,
) -> tuple[Answers | None, list[Problem]]:
    """Check what the kickstart asks against what a ``role`` install can do; build the Answers."""
    out = _Collector(filename)
    handler = parsed.handler
    _check_command_kinds(parsed, out)
    _check_sections(parsed, out)

    root_hash = _root_password(parsed, out, hasher)
    network, hostname = _network(parsed, role, out)
    disk = _target_disk(parsed, out)
    partitions = _partitions(parsed, role, out)
    kernel_append = _bootloader(parsed, out)
    ssh_keys = _ssh_keys(parsed, out)
    scripts = _scripts(parsed, out)
    manager, server = _role_answers(parsed, role, out, hasher)
    finish = _finish(parsed)

    timezone = getattr(handler.timezone, "timezone", "") or "UTC"
    keyboard = getattr(handler.keyboard, "vc_keymap", "") or getattr(handler.keyboard, "keyboard", "") or "us"
    lang = getattr(handler.lang, "lang", "") or "en_US.UTF-8"

    if any(p.severity == "error" for p in out.problems):
        return None, out.problems
    answers = Answers(
        role=role,
        hostname=hostname,
        root_password_hash=root_hash,
        target_disk=disk,
        network=network,
        timezone=timezone,
        keyboard=keyboard,
        lang=lang,
        ssh_keys=ssh_keys,
        partitions=partitions,
        kernel_append=kernel_append,
        scripts=scripts,
        finish=finish,
        manager=manager,
        server=server,
    )
    return answers, out.problems


def _check_command_kinds(parsed: ParsedKickstart, out: _Collector) -> None:
    for name, lines in parsed.command_lines.items():
        if name in HONOURED or name not in parsed.handler.commands:
            continue  # honoured, or unknown (pykickstart already reported it)
        for line in lines:
            if name in IGNORED:
                out.warning(line, f"'{name}' is ignored: {IGNORED[name]}")
            else:
                out.error(
                    line,
                    f"'{name}' is not supported by the appliance installer; remove it "
                    "(the appliance uses plain GPT partitions on one disk)"
                    if name in {"raid", "logvol", "volgroup", "btrfs", "reqpart", "mount"}
                    else f"'{name}' is not supported by the appliance installer; remove it "
                    "and do it in %post or after the install",
                )


def _check_sections(parsed: ParsedKickstart, out: _Collector) -> None:
    for name, line in parsed.section_lines:
        if name == "%packages":
            out.warning(line, "%packages is ignored: the appliance image carries its own packages")
        elif name in ("%pre", "%post"):
            continue
        elif name in ("%traceback", "%onerror"):
            out.warning(line, f"{name} is ignored: a failed install stops and tells where its log is")
        else:
            out.error(line, f"section {name} is not supported; remove it (supported: %pre, %post)")


def _root_password(parsed: ParsedKickstart, out: _Collector, hasher: Callable[[str], str]) -> str | None:
    rootpw = parsed.handler.rootpw
    line = parsed.last_line("rootpw")
    if not rootpw.seen:
        out.error(
            1,
            "no root password: add 'rootpw --iscrypted HASH' (make HASH with "
            "'openssl passwd -6') or 'rootpw --lock' with an sshkey for root",
        )
        return None
    if getattr(rootpw, "lock", False):
        if not any(key.username == "root" for key in parsed.handler.sshkey.sshUserList):
            out.warning(line, "root is locked and has no sshkey: nobody can log in as root")
        return None
    if rootpw.isCrypted:
        if not looks_like_crypt_hash(rootpw.password):
            out.error(
                line,
                "rootpw --iscrypted needs a crypt(3) hash such as '$6$salt$...' "
                "(make one with 'openssl passwd -6')",
            )
            return None
        return str(rootpw.password)
    if not rootpw.password:
        out.error(line, "rootpw has an empty password")
        return None
    return hasher(rootpw.password)


def _netmask_prefix(netmask: str) -> int | None:
    try:
        if netmask.isdigit():
            return ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
        return ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        return None


def _network(parsed: ParsedKickstart, role: Role, out: _Collector) -> tuple[NetworkAnswers, str]:
    handler = parsed.handler
    entries = list(handler.network.network)
    mgmt = handler.commands["ovsmgmntif"]
    mgmt_iface = mgmt.interface if mgmt.seen else None
    if mgmt_iface and not _IFACE_RE.match(mgmt_iface):
        out.error(parsed.last_line("ovsmgmntif"), f"ovsmgmntif: '{mgmt_iface}' is not an interface name")
    named = next((e for e in entries if e.hostname), None)
    hostname = named.hostname if named else ""
    # 'network --hostname=NAME' alone names the host and configures no interface.
    configured = [e for e in entries if e.device or e.ip or not e.hostname]
    if len(configured) > 1:
        for extra in configured[1:]:
            out.error(
                extra.lineno,
                "only one network interface is configured at install time; "
                "keep one 'network' line (the management interface) and add "
                "others after the install",
            )
    network = NetworkAnswers(device=mgmt_iface)
    if configured:
        network = _network_entry(configured[0], mgmt_iface, out)
    if not hostname:
        hostname = role
        out.warning(
            parsed.first_line("network") or 1, f"no hostname given (network --hostname=NAME); using '{role}'"
        )
    elif not valid_hostname(hostname):
        out.error(
            parsed.first_line("network"),
            f"'{hostname}' is not a valid host name (letters, digits, '-' and '.', at most 253)",
        )
    return network, hostname


def _network_entry(entry: Any, mgmt_iface: str | None, out: _Collector) -> NetworkAnswers:
    line = entry.lineno
    device = entry.device or None
    if device in ("link", "bootif"):
        device = None
    if device and not _IFACE_RE.match(device):
        out.error(line, f"network --device={device}: not an interface name or MAC address")
    if mgmt_iface and device and device != mgmt_iface:
        out.error(
            line,
            f"network --device={device} differs from 'ovsmgmntif {mgmt_iface}'; "
            "the management interface is the one the installer configures",
        )
    device = device or mgmt_iface
    for option in ("bondslaves", "vlanid", "teamslaves", "bridgeslaves"):
        if getattr(entry, option, None):
            out.error(line, f"network --{option} is not supported at install time; configure it after")
    nameservers = tuple(n.strip() for n in (entry.nameserver or "").split(",") if n.strip())
    bootproto = entry.bootProto or "dhcp"
    if bootproto == "dhcp":
        return NetworkAnswers(device=device, bootproto="dhcp", nameservers=nameservers)
    if bootproto != "static":
        out.error(line, f"network --bootproto={bootproto} is not supported; use dhcp or static")
        return NetworkAnswers(device=device)
    address, prefix, gateway = entry.ip, None, entry.gateway or None
    if not address or not entry.netmask:
        out.error(line, "network --bootproto=static needs --ip=ADDRESS and --netmask=MASK")
    else:
        prefix = _netmask_prefix(entry.netmask)
        if prefix is None:
            out.error(line, f"network --netmask={entry.netmask} is not a netmask")
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            out.error(line, f"network --ip={address} is not an IPv4 address")
    for value in (*nameservers, *([gateway] if gateway else [])):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            out.error(line, f"network: '{value}' is not an IP address")
    return NetworkAnswers(
        device=device,
        bootproto="static",
        address=address,
        prefix=prefix,
        gateway=gateway,
        nameservers=nameservers,
    )


def _target_disk(parsed: ParsedKickstart, out: _Collector) -> str | None:
    handler = parsed.handler
    clearpart, zerombr = handler.clearpart, handler.zerombr
    if not clearpart.seen:
        out.error(
            1,
            "the installer erases the whole target disk: say so with "
            "'clearpart --all --initlabel' (add --drives=DISK to name the disk)",
        )
    elif clearpart.type not in (CLEARPART_TYPE_ALL, CLEARPART_TYPE_LIST) and not clearpart.initAll:
        out.error(
            parsed.last_line("clearpart"),
            "clearpart must be '--all' (the installer erases the whole target disk)",
        )
    if clearpart.seen and not (clearpart.type == CLEARPART_TYPE_ALL or clearpart.initAll or zerombr.zerombr):
        out.warning(
            parsed.last_line("clearpart"), "the whole target disk is erased, not only some partitions"
        )
    names: dict[str, int] = {}
    for drive in getattr(clearpart, "drives", []) or []:
        names.setdefault(drive, parsed.last_line("clearpart"))
    for drive in getattr(handler.ignoredisk, "onlyuse", []) or []:
        names.setdefault(drive, parsed.last_line("ignoredisk"))
    if getattr(handler.ignoredisk, "ignoredisk", None):
        out.warning(
            parsed.last_line("ignoredisk"),
            "ignoredisk --drives is only used to exclude disks from the choice of target",
        )
    for part in handler.partition.partitions:
        if part.disk:
            names.setdefault(part.disk, part.lineno)
    for drive in (getattr(handler.bootloader, "driveorder", []) or [])[:1]:
        names.setdefault(drive, parsed.last_line("bootloader"))
    paths = {disk_path(n): line for n, line in names.items()}
    if len(paths) > 1:
        line = max(paths.values())
        out.error(
            line,
            f"the appliance installs onto one disk, but the kickstart names several: "
            f"{', '.join(sorted(paths))}",
        )
        return None
    return next(iter(paths), None)


def _partitions(parsed: ParsedKickstart, role: Role, out: _Collector) -> tuple[PartitionAnswer, ...]:
    handler = parsed.handler
    parts = list(handler.partition.partitions)
    if not parts:
        return ()  # autopart or nothing: the default layout
    if handler.autopart.autopart:
        out.error(parsed.last_line("autopart"), "use either autopart or part lines, not both")
    result: list[PartitionAnswer] = []
    grow_lines: list[int] = []
    seen_mounts: set[str] = set()
    for part in parts:
        mount = part.mountpoint
        line = part.lineno
        fstype = (part.fstype or ("swap" if mount == "swap" else "ext4")).lower()
        if getattr(part, "onPart", "") or getattr(part, "encrypted", False) or getattr(part, "resize", False):
            out.error(line, f"part {mount}: --onpart/--usepart, --encrypted and --resize are not supported")
            continue
        if mount in ("biosboot", "/boot/efi") or fstype in ("biosboot", "efi"):
            out.warning(
                line,
                f"part {mount}: the BIOS boot and EFI system partitions are always "
                "created by the installer; this line's size is ignored",
            )
            continue
        if mount.startswith("raid.") or mount.startswith("pv.") or mount.startswith("btrfs."):
            out.error(line, f"part {mount}: RAID, LVM and btrfs members are not supported")
            continue
        if mount != "swap" and not mount.startswith("/"):
            out.error(line, f"part {mount}: the mount point must start with '/' or be 'swap'")
            continue
        if fstype not in _SUPPORTED_FSTYPES or fstype in ("vfat",):
            out.error(line, f"part {mount}: filesystem '{fstype}' is not supported; use ext4")
            continue
        if mount in seen_mounts:
            out.error(line, f"part {mount}: this mount point is given twice")
            continue
        seen_mounts.add(mount)
        size = int(part.size or 0)
        if getattr(part, "recommended", False) and mount == "swap":
            size = 2048
        if size <= 0 and not part.grow:
            out.error(line, f"part {mount}: give --size=MIB (or --grow)")
            continue
        if part.grow:
            grow_lines.append(line)
            if getattr(part, "maxSizeMB", 0):
                out.warning(line, f"part {mount}: --maxsize is ignored; the partition takes the free space")
        result.append(
            PartitionAnswer(mountpoint=mount, size_mib=max(size, 1), grow=bool(part.grow), fstype=fstype)
        )
    if "/" not in seen_mounts:
        out.error(parts[0].lineno, "the part lines have no root partition: add 'part / --size=4096 --grow'")
    for line in grow_lines[1:]:
        out.error(line, "only one partition can have --grow")
    if role == "manager" and MANAGER_DB_MOUNTPOINT not in seen_mounts and result:
        out.warning(
            parts[-1].lineno,
            f"the manager's database gets its own filesystem: adding "
            f"'part {MANAGER_DB_MOUNTPOINT} --size=2048'",
        )
        result.append(PartitionAnswer(mountpoint=MANAGER_DB_MOUNTPOINT, size_mib=2048))
    return tuple(result)


def _bootloader(parsed: ParsedKickstart, out: _Collector) -> str:
    boot = parsed.handler.bootloader
    if not boot.seen:
        return ""
    line = parsed.last_line("bootloader")
    if boot.location == "none" or getattr(boot, "disabled", False):
        out.error(line, "bootloader --location=none: the appliance always installs GRUB (BIOS and UEFI)")
    if boot.location == "partition":
        out.error(line, "bootloader --location=partition is not supported; GRUB goes into the disk")
    if getattr(boot, "password", ""):
        out.warning(line, "bootloader --password is ignored: set a GRUB password after the install")
    return str(boot.appendLine or "")


def _ssh_keys(parsed: ParsedKickstart, out: _Collector) -> tuple[tuple[str, str], ...]:
    keys = []
    for entry in parsed.handler.sshkey.sshUserList:
        if not _SSH_KEY_RE.match(entry.key.strip()):
            out.error(
                entry.lineno,
                f"sshkey --username={entry.username}: the key is not an OpenSSH "
                "public key line ('ssh-ed25519 AAAA... comment')",
            )
            continue
        keys.append((str(entry.username), str(entry.key.strip())))
    return tuple(keys)


def _scripts(parsed: ParsedKickstart, out: _Collector) -> tuple[Script, ...]:
    scripts = []
    for script in parsed.handler.scripts:
        if script.type not in (KS_SCRIPT_PRE, KS_SCRIPT_POST):
            continue
        kind: Literal["pre", "post"] = "pre" if script.type == KS_SCRIPT_PRE else "post"
        scripts.append(
            Script(
                kind=kind,
                body=script.script,
                interpreter=script.interp or "/bin/sh",
                in_chroot=bool(script.inChroot) if kind == "post" else False,
                error_on_fail=bool(getattr(script, "errorOnFail", False)),
                line=script.lineno or 0,
            )
        )
    return tuple(scripts)


def _finish(parsed: ParsedKickstart) -> FinishAction:
    seen = [(parsed.last_line(c), c) for c in _FINISH_COMMANDS if c in parsed.command_lines]
    if not seen:
        return "none"
    return _FINISH_COMMANDS[max(seen)[1]]


def _role_answers(
    parsed: ParsedKickstart,
    role: Role,
    out: _Collector,
    hasher: Callable[[str], str],
) -> tuple[ManagerAnswers | None, ServerAnswers | None]:
    commands = parsed.handler.commands
    agent, mgmt, enroll, admin = (commands[n] for n in ("ovsagent", "ovsmgmntif", "enroll", "manageradmin"))
    if role == "manager":
        for cmd in (agent, mgmt, enroll):
            if cmd.seen:
                out.error(
                    parsed.last_line(cmd.name),
                    f"'{cmd.name}' is for server installs; this is a "
                    "manager install (remove it or use --role server)",
                )
        if not admin.seen:
            out.error(1, "a manager install needs the admin password: add 'manageradmin PASSWORD'")
            return None, None
        if len(admin.password) < MIN_ADMIN_PASSWORD:
            out.error(
                parsed.last_line("manageradmin"),
                f"manageradmin: the password must have at least {MIN_ADMIN_PASSWORD} characters",
            )
            return None, None
        return ManagerAnswers(admin_password=admin.password), None

    if admin.seen:
        out.error(
            parsed.last_line("manageradmin"),
            "'manageradmin' is for manager installs; this is a "
            "server install (remove it or use --role manager)",
        )
    if not agent.seen:
        out.error(
            1,
            "a server install needs the agent password: add 'ovsagent --iscrypted HASH' "
            "(make HASH with 'openssl passwd -6') or 'ovsagent PASSWORD'",
        )
        return None, None
    line = parsed.last_line("ovsagent")
    if agent.isCrypted:
        if not looks_like_crypt_hash(agent.password):
            out.error(
                line,
                "ovsagent --iscrypted needs a crypt(3) hash such as '$6$salt$...' "
                "(make one with 'openssl passwd -6')",
            )
            return None, None
        agent_hash = agent.password
    else:
        agent_hash = hasher(agent.password)
    enrollment = None
    if enroll.seen:
        eline = parsed.last_line("enroll")
        if not valid_manager_url(enroll.manager):
            out.error(
                eline,
                f"enroll --manager={enroll.manager}: give the manager's https:// URL, "
                "e.g. https://manager.example.com:7002",
            )
        if not valid_fingerprint(enroll.fingerprint):
            out.error(
                eline,
                "enroll --fingerprint: give the SHA-256 fingerprint of the manager's CA "
                "(64 hex digits, colons allowed), as the manager install printed it",
            )
        if not enroll.token.strip():
            out.error(eline, "enroll --token: the token is empty")
        enrollment = Enrollment(
            manager_url=enroll.manager,
            fingerprint=normalize_fingerprint(enroll.fingerprint),
            token=enroll.token,
        )
    return None, ServerAnswers(
        agent_password_hash=agent_hash,
        management_interface=mgmt.interface if mgmt.seen else None,
        enrollment=enrollment,
    )
