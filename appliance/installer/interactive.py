"""Interactive mode: plain numbered prompts that work on a VGA console and a serial line alike."""

from __future__ import annotations

import getpass
import ipaddress
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from appliance.errors import UsageError
from appliance.installer.answers import (
    Answers,
    Enrollment,
    ManagerAnswers,
    NetworkAnswers,
    Role,
    ServerAnswers,
)
from appliance.installer.checks import (
    MIN_ADMIN_PASSWORD,
    normalize_fingerprint,
    valid_fingerprint,
    valid_hostname,
    valid_manager_url,
)
from appliance.installer.disks import Disk
from appliance.installer.passwords import sha512_crypt


class Prompter:
    """Reads answers line by line; passwords are read without echo when on a terminal."""

    def __init__(self, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
        self.stdin, self.stdout = stdin, stdout

    def say(self, text: str = "") -> None:
        print(text, file=self.stdout, flush=True)

    def _readline(self, prompt: str) -> str:
        self.stdout.write(prompt)
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            raise UsageError("input ended before the questions were answered", "run the installer again")
        return line.strip()

    def ask(self, question: str, default: str | None = None,
            check: Callable[[str], str | None] = lambda _v: None) -> str:
        """Ask until ``check`` (returning an error text or None) accepts the answer."""
        suffix = f" [{default}]" if default else ""
        while True:
            value = self._readline(f"{question}{suffix}: ") or (default or "")
            problem = check(value) if value else "an answer is needed"
            if problem is None:
                return value
            self.say(f"  {problem}")

    def choose(self, question: str, options: list[str], default: int = 1) -> int:
        for number, option in enumerate(options, start=1):
            self.say(f"  {number}) {option}")

        def check(value: str) -> str | None:
            ok = value.isdigit() and 1 <= int(value) <= len(options)
            return None if ok else f"type a number from 1 to {len(options)}"

        return int(self.ask(question, str(default), check)) - 1

    def yes_no(self, question: str, default: bool = False) -> bool:
        def check(value: str) -> str | None:
            return None if value.lower() in ("y", "yes", "n", "no") else "answer y or n"

        return self.ask(question, "y" if default else "n", check).lower() in ("y", "yes")

    def password(self, question: str, min_length: int = 1) -> str:
        """Typed twice; not echoed on a terminal."""
        while True:
            first = self._secret(f"{question}: ")
            if len(first) < min_length:
                self.say(f"  the password needs at least {min_length} characters")
                continue
            if self._secret("Type it again: ") == first:
                return first
            self.say("  the two passwords differ; try again")

    def _secret(self, prompt: str) -> str:
        if self.stdin.isatty():
            return getpass.getpass(prompt, stream=self.stdout)
        return self._readline(prompt)


def network_interfaces(sys_class_net: Path = Path("/sys/class/net")) -> list[tuple[str, str]]:
    """(name, "link up"/"no link") of the Ethernet-like interfaces."""
    found = []
    for iface in sorted(sys_class_net.iterdir()) if sys_class_net.is_dir() else []:
        if iface.name == "lo" or (iface / "bridge").exists() or not (iface / "device").exists():
            continue
        try:
            carrier = (iface / "carrier").read_text().strip() == "1"
        except OSError:
            carrier = False
        found.append((iface.name, "link up" if carrier else "no link"))
    return found


def _check_hostname(value: str) -> str | None:
    return None if valid_hostname(value) else "letters, digits, '-' and '.' only"


def _check_cidr(value: str) -> str | None:
    try:
        iface = ipaddress.IPv4Interface(value)
    except ValueError:
        return "give ADDRESS/PREFIX, e.g. 192.0.2.10/24"
    return None if "/" in value and iface.network.prefixlen < 32 else "give ADDRESS/PREFIX, e.g. 192.0.2.10/24"


def _check_ip(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "not an IP address"
    return None


def ask_disk(prompter: Prompter, disks: list[Disk]) -> Disk:
    if not disks:
        raise UsageError("no disk to install onto was found (the install medium is not offered)",
                         "attach a disk and run the installer again")
    prompter.say("Disks (everything on the chosen disk is erased):")
    return disks[prompter.choose("Install onto disk", [d.describe() for d in disks])]


def ask_network(prompter: Prompter, interfaces: list[tuple[str, str]]) -> NetworkAnswers:
    prompter.say("Management network interface:")
    if interfaces:
        index = prompter.choose("Interface", [f"{name} ({state})" for name, state in interfaces])
        device = interfaces[index][0]
    else:
        device = prompter.ask("Interface name (none detected)", "eth0")
    if prompter.choose("Address", ["DHCP", "static"]) == 0:
        return NetworkAnswers(device=device, bootproto="dhcp")
    cidr = ipaddress.IPv4Interface(prompter.ask("Address/prefix", check=_check_cidr))
    gateway = prompter.ask("Gateway", str(next(cidr.network.hosts())), _check_ip)
    dns = prompter.ask("DNS server", gateway, _check_ip)
    return NetworkAnswers(device=device, bootproto="static", address=str(cidr.ip),
                          prefix=cidr.network.prefixlen, gateway=gateway, nameservers=(dns,))


def ask_server(prompter: Prompter) -> ServerAnswers:
    agent = prompter.password("Agent password (the manager uses it to take ownership)")
    enrollment = None
    if prompter.yes_no("Enrol with a manager now (needs its URL, CA fingerprint and a token)?"):
        url = prompter.ask("Manager URL", "https://manager:7002",
                           lambda v: None if valid_manager_url(v) else "give https://HOST[:PORT]")
        fingerprint = prompter.ask(
            "Manager CA fingerprint (SHA-256)",
            check=lambda v: None if valid_fingerprint(v) else "64 hex digits, colons allowed")
        token = prompter.ask("Enrollment token")
        enrollment = Enrollment(manager_url=url, fingerprint=normalize_fingerprint(fingerprint), token=token)
    return ServerAnswers(agent_password_hash=sha512_crypt(agent), management_interface=None,
                         enrollment=enrollment)


def ask_answers(prompter: Prompter, role: Role, disks: list[Disk] | None,
                interfaces: Callable[[], list[tuple[str, str]]]) -> tuple[Answers, Disk | None]:
    """All questions for a ``role`` install; ``disks`` None when the disk was given on the command line.

    ``interfaces`` is called after the disk question (the boot may still be loading NIC drivers)."""
    prompter.say(f"Appliance {role} installer. Nothing is written before the final confirmation.")
    disk = ask_disk(prompter, disks) if disks is not None else None
    network = ask_network(prompter, interfaces())
    hostname = prompter.ask("Host name", role, _check_hostname)
    timezone = prompter.ask("Time zone", "UTC")
    root_hash = sha512_crypt(prompter.password("Root password"))
    manager = server = None
    if role == "manager":
        manager = ManagerAnswers(admin_password=prompter.password(
            "Manager admin password", min_length=MIN_ADMIN_PASSWORD))
    else:
        server = ask_server(prompter)
        server = ServerAnswers(agent_password_hash=server.agent_password_hash,
                               management_interface=network.device, enrollment=server.enrollment)
    answers = Answers(role=role, hostname=hostname, root_password_hash=root_hash,
                      target_disk=disk.path if disk else None, network=network, timezone=timezone,
                      finish="reboot", manager=manager, server=server)
    return answers, disk


def confirm_erase(prompter: Prompter, disk: Disk) -> bool:
    prompter.say(f"ALL DATA ON {disk.path} ({disk.describe()}) WILL BE ERASED.")
    return prompter.ask("Type 'yes' to install, anything else to stop", "no").lower() == "yes"
