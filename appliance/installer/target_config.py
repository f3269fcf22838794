"""Files the installer writes into the target system: pure renderers plus small writers."""

from __future__ import annotations

import os
from pathlib import Path

from appliance.errors import ConfigError
from appliance.installer.answers import Answers, NetworkAnswers

NETWORK_FILE = "etc/systemd/network/10-appliance-install.network"


def render_hosts(hostname: str) -> str:
    short = hostname.split(".")[0]
    names = f"{hostname} {short}" if short != hostname else hostname
    return (f"127.0.0.1\tlocalhost\n127.0.1.1\t{names}\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


def render_networkd(network: NetworkAnswers) -> str:
    """A systemd-networkd .network file for the management interface."""
    device = network.device
    if device is None:
        match = "Type=ether\nName=en* eth*"
    elif ":" in device and len(device) == 17:
        match = f"MACAddress={device.lower()}"
    else:
        match = f"Name={device}"
    lines = ["# Written by the appliance installer: the management interface", "[Match]", match, "",
             "[Network]"]
    if network.bootproto == "dhcp":
        lines.append("DHCP=ipv4")
    else:
        lines.append(f"Address={network.address}/{network.prefix}")
        if network.gateway:
            lines.append(f"Gateway={network.gateway}")
    lines.extend(f"DNS={ns}" for ns in network.nameservers)
    return "\n".join(lines) + "\n"


def render_resolv_conf(network: NetworkAnswers) -> str | None:
    if not network.nameservers:
        return None
    return "".join(f"nameserver {ns}\n" for ns in network.nameservers)


def set_shadow_password(shadow: str, user: str, password_hash: str | None) -> str:
    """/etc/shadow text with ``user``'s password field replaced (None: locked, '!')."""
    out, found = [], False
    for line in shadow.splitlines():
        fields = line.split(":")
        if fields and fields[0] == user and len(fields) >= 2:
            fields[1] = password_hash if password_hash else "!"
            found = True
            line = ":".join(fields)
        out.append(line)
    if not found:
        raise ConfigError(f"the target's /etc/shadow has no entry for {user}",
                          "the live image is incomplete: rebuild it")
    return "\n".join(out) + "\n"


def passwd_entry(passwd: str, user: str) -> tuple[int, int, str] | None:
    """(uid, gid, home) of ``user`` from /etc/passwd text."""
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) >= 6 and fields[0] == user:
            return int(fields[2]), int(fields[3]), fields[5]
    return None


def _write(target: Path, relpath: str, text: str, mode: int = 0o644) -> Path:
    path = target / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def write_identity(target: Path, answers: Answers) -> None:
    _write(target, "etc/hostname", answers.hostname + "\n")
    _write(target, "etc/hosts", render_hosts(answers.hostname))
    # systemd makes a new machine id on first boot: every installed host is distinct.
    _write(target, "etc/machine-id", "", 0o444)
    dbus_id = target / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()


def write_network(target: Path, answers: Answers) -> list[str]:
    """Configure systemd-networkd; returns notes for the log."""
    _write(target, NETWORK_FILE, render_networkd(answers.network))
    notes = [f"network: {answers.network.bootproto} on {answers.network.device or 'the first Ethernet port'}"]
    resolv = render_resolv_conf(answers.network)
    if resolv:
        _write(target, "etc/resolv.conf", resolv)
    unit = target / "lib/systemd/system/systemd-networkd.service"
    if not unit.exists():
        raise ConfigError("the target has no systemd-networkd (lib/systemd/system/systemd-networkd.service)",
                          "the image must include systemd; rebuild it")
    wants = target / "etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
    wants.parent.mkdir(parents=True, exist_ok=True)
    if not wants.is_symlink():
        wants.symlink_to("/lib/systemd/system/systemd-networkd.service")
    return notes


def write_locale(target: Path, answers: Answers) -> list[str]:
    notes = []
    zoneinfo = target / "usr/share/zoneinfo" / answers.timezone
    _write(target, "etc/timezone", answers.timezone + "\n")
    localtime = target / "etc/localtime"
    if localtime.exists() or localtime.is_symlink():
        localtime.unlink()
    localtime.symlink_to(f"/usr/share/zoneinfo/{answers.timezone}")
    if not zoneinfo.exists():
        notes.append(f"warning: the target has no zoneinfo for {answers.timezone} (is tzdata installed?)")
    _write(target, "etc/default/keyboard",
           f'XKBMODEL="pc105"\nXKBLAYOUT="{answers.keyboard}"\nXKBVARIANT=""\nXKBOPTIONS=""\n')
    _write(target, "etc/default/locale", f"LANG={answers.lang}\n")
    return notes


def write_root_password(target: Path, answers: Answers) -> None:
    shadow = target / "etc/shadow"
    if not shadow.exists():
        raise ConfigError("the target has no /etc/shadow", "the live image is incomplete: rebuild it")
    text = set_shadow_password(shadow.read_text(encoding="utf-8"), "root", answers.root_password_hash)
    _write(target, "etc/shadow", text, 0o640)


def write_ssh_keys(target: Path, answers: Answers) -> list[str]:
    notes = []
    passwd = (target / "etc/passwd").read_text(encoding="utf-8")
    by_user: dict[str, list[str]] = {}
    for user, key in answers.ssh_keys:
        by_user.setdefault(user, []).append(key)
    for user, keys in by_user.items():
        entry = passwd_entry(passwd, user)
        if entry is None:
            raise ConfigError(f"sshkey --username={user}: no such user in the installed system",
                              "use root or a user the image has")
        uid, gid, home = entry
        ssh_dir = target / home.lstrip("/") / ".ssh"
        ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        auth = ssh_dir / "authorized_keys"
        existing = auth.read_text(encoding="utf-8") if auth.exists() else ""
        auth.write_text(existing + "".join(f"{k}\n" for k in keys), encoding="utf-8")
        auth.chmod(0o600)
        for path in (ssh_dir, auth):
            os.chown(path, uid, gid)
        notes.append(f"ssh: {len(keys)} key(s) for {user}")
    return notes


# RSA keys take ~15 s to make under emulation and every OpenSSH since 6.5 speaks ed25519
HOST_KEY_TYPES = ("ed25519", "ecdsa")
HOST_KEYS_CONFIG = "etc/ssh/sshd_config.d/10-appliance-host-keys.conf"


def host_key_commands(target: Path, hostname: str) -> list[list[str]]:
    """ssh-keygen runs making the target's host keys (one per type in HOST_KEY_TYPES)."""
    return [
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"root@{hostname}",
         "-f", str(target / f"etc/ssh/ssh_host_{kind}_key")]
        for kind in HOST_KEY_TYPES
    ]


def render_host_keys_config() -> str:
    lines = ["# written by the appliance installer: the host keys it made"]
    return "\n".join(lines + [f"HostKey /etc/ssh/ssh_host_{kind}_key" for kind in HOST_KEY_TYPES]) + "\n"


def write_host_keys_config(target: Path) -> None:
    _write(target, HOST_KEYS_CONFIG, render_host_keys_config())


def disable_live_only_units(target: Path) -> list[str]:
    """The installed system must never start the installer again (no reboot into an install loop)."""
    removed = []
    for link in sorted((target / "etc/systemd/system").glob("*.wants/appliance-installer*")):
        link.unlink()
        removed.append(str(link.relative_to(target)))
    return [f"disabled live-only unit {r}" for r in removed]
