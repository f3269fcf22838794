"""The one contract between the answer sources (kickstart, interactive prompts) and the install steps.

Everything the steps need is in ``Answers``; nothing else is read during an install. Secrets are
held as crypt(3) hashes where the consumer accepts one; the manager admin password is kept in
plain text because the manager hashes it itself (argon2) at ``appliance manager init``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["manager", "server"]
ROLES: tuple[Role, ...] = ("manager", "server")
FinishAction = Literal["reboot", "poweroff", "halt", "none"]

# Where the manager's database lives: its own filesystem so a full disk elsewhere cannot stop it.
MANAGER_DB_MOUNTPOINT = "/var/lib/mysql"  # MariaDB's datadir on its own filesystem
MANAGER_STATE_DIR = "/var/lib/appliance/manager"
AGENT_STATE_DIR = "/var/lib/appliance/agent"


@dataclass(frozen=True)
class NetworkAnswers:
    """One interface; ``bootproto`` is "dhcp" or "static" (then address/prefix are set)."""

    device: str | None = None  # None: the first interface with a link (or ``ovsmgmntif``)
    bootproto: Literal["dhcp", "static"] = "dhcp"
    address: str | None = None
    prefix: int | None = None
    gateway: str | None = None
    nameservers: tuple[str, ...] = ()


@dataclass(frozen=True)
class PartitionAnswer:
    """A partition the user asked for beyond the fixed boot partitions (kickstart ``part``)."""

    mountpoint: str  # "/", "/var/lib/mysql", "swap", ...
    size_mib: int
    grow: bool = False
    fstype: str = "ext4"


@dataclass(frozen=True)
class Script:
    """A %pre or %post script: %pre runs on the live system, %post in the target (unless nochroot)."""

    kind: Literal["pre", "post"]
    body: str
    interpreter: str = "/bin/sh"
    in_chroot: bool = True
    error_on_fail: bool = False
    line: int = 0


@dataclass(frozen=True)
class Enrollment:
    """Where a server enrols: the manager's URL, its CA certificate's SHA-256 fingerprint, a token."""

    manager_url: str
    fingerprint: str
    token: str


@dataclass(frozen=True)
class ServerAnswers:
    agent_password_hash: str  # crypt(3) SHA-512, the format of ``ovsagent --iscrypted``
    management_interface: str | None = None
    enrollment: Enrollment | None = None
    xen_default: bool = True  # boot Xen (multiboot2) by default; plain Linux stays as rescue entry


@dataclass(frozen=True)
class ManagerAnswers:
    admin_password: str  # plain text: the manager hashes it with argon2 at init


@dataclass(frozen=True)
class Answers:
    role: Role
    hostname: str
    root_password_hash: str | None  # None only with ``rootpw --lock``
    target_disk: str | None = None  # device path; None: the only disk there is
    network: NetworkAnswers = field(default_factory=NetworkAnswers)
    timezone: str = "UTC"
    keyboard: str = "us"
    lang: str = "en_US.UTF-8"
    ssh_keys: tuple[tuple[str, str], ...] = ()  # (user, key line)
    partitions: tuple[PartitionAnswer, ...] = ()  # empty: the default layout (autopart)
    kernel_append: str = ""
    scripts: tuple[Script, ...] = ()
    finish: FinishAction = "reboot"
    manager: ManagerAnswers | None = None
    server: ServerAnswers | None = None

    def with_target_disk(self, disk: str) -> Answers:
        return dataclasses.replace(self, target_disk=disk)

    def to_dict(self, redact: bool = True) -> dict[str, Any]:
        """A plain dict (JSON-ready) of the answers; secrets are replaced by "***" unless asked."""
        data = dataclasses.asdict(self)
        if redact:
            _redact(data)
        return data


_SECRET_KEYS = {"root_password_hash", "agent_password_hash", "admin_password", "token"}


def _redact(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _SECRET_KEYS and value:
                node[key] = "***"
            else:
                _redact(value)
    elif isinstance(node, list | tuple):
        for item in node:
            _redact(item)
