"""VM specifications: the hypervisor-independent description of a guest that the manager sends
(an XML-RPC struct), validated into frozen dataclasses. The spec, keyed by the VM UUID, is the
source of truth; domain XML is derived from it (domainxml.py) and can be rebuilt on any server of
a pool, which is what HA restart and migration need later."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from appliance.errors import UsageError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
BRIDGE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
VIRT_TYPES = ("hvm", "pv", "pvh")
DISK_FORMATS = ("raw", "qcow2")
NIC_MODELS = ("virtio", "e1000", "rtl8139")
CRASH_ACTIONS = ("destroy", "restart", "preserve")
MAX_VCPUS = 128
MAX_MEMORY_MIB = 4 * 1024 * 1024
MAX_DISKS = 26
MAX_NICS = 16


class SpecError(UsageError):
    """A VM spec field is missing or wrong."""


@dataclass(frozen=True)
class DiskSpec:
    path: str
    format: str = "raw"
    device: str = "disk"  # disk | cdrom
    readonly: bool = False
    shareable: bool = False  # shared between servers of a pool (cache=none, no host locking)


@dataclass(frozen=True)
class NicSpec:
    mac: str
    bridge: str = ""
    network: str = ""
    user: bool = False  # QEMU user-mode networking (labs without bridges)
    model: str = "virtio"


@dataclass(frozen=True)
class KernelBoot:
    kernel: str
    initrd: str = ""
    cmdline: str = ""


@dataclass(frozen=True)
class VmSpec:
    uuid: str
    name: str
    vcpus: int
    memory_mib: int
    virt_type: str = ""  # "" = the hypervisor's default (QEMU: hvm, Xen: pvh)
    kernel_boot: KernelBoot | None = None  # None = boot from the first disk
    disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    console_log: str = ""  # file that receives the serial console; "" = none (pty)
    on_crash: str = "destroy"
    ha: bool = False  # restart elsewhere in the pool if the server dies (pools, later)
    description: str = field(default="", compare=False)

    def to_struct(self) -> dict[str, Any]:
        """The spec as an XML-RPC struct (and as stored in the agent DB)."""
        out: dict[str, Any] = {
            "uuid": self.uuid,
            "name": self.name,
            "vcpus": self.vcpus,
            "memory_mib": self.memory_mib,
            "virt_type": self.virt_type,
            "disks": [
                {
                    "path": d.path,
                    "format": d.format,
                    "device": d.device,
                    "readonly": d.readonly,
                    "shareable": d.shareable,
                }
                for d in self.disks
            ],
            "nics": [
                {"mac": n.mac, "bridge": n.bridge, "network": n.network, "user": n.user, "model": n.model}
                for n in self.nics
            ],
            "console_log": self.console_log,
            "on_crash": self.on_crash,
            "ha": self.ha,
            "description": self.description,
        }
        if self.kernel_boot is not None:
            out["boot"] = {
                "kernel": self.kernel_boot.kernel,
                "initrd": self.kernel_boot.initrd,
                "cmdline": self.kernel_boot.cmdline,
            }
        else:
            out["boot"] = "disk"
        return out


def random_mac() -> str:
    """A locally administered unicast MAC (02:xx:...), unique enough for one pool."""
    return "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))


class _Fields:
    """Reads typed fields from a struct and reports the first wrong one by its full name."""

    def __init__(self, data: Any, where: str, allowed: set[str]) -> None:
        if not isinstance(data, dict):
            raise SpecError(f"{where} must be a struct, got {type(data).__name__}", None)
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise SpecError(
                f"{where} has unknown field(s): {', '.join(map(str, unknown))}",
                f"allowed fields: {', '.join(sorted(allowed))}",
            )
        self.data = data
        self.where = where

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where != "spec" else key

    def str_(self, key: str, default: str | None = None, pattern: re.Pattern[str] | None = None) -> str:
        value = self.data.get(key, default)
        if value is None:
            raise SpecError(f"{self._name(key)} is required", None)
        if not isinstance(value, str):
            raise SpecError(f"{self._name(key)} must be a string, got {type(value).__name__}", None)
        if pattern is not None and not (value == "" == default) and not pattern.match(value):
            raise SpecError(f"{self._name(key)} {value!r} is not valid", f"it must match {pattern.pattern}")
        return value

    def int_(self, key: str, low: int, high: int, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if value is None:
            raise SpecError(f"{self._name(key)} is required", None)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{self._name(key)} must be an integer, got {type(value).__name__}", None)
        if not low <= value <= high:
            raise SpecError(f"{self._name(key)} must be from {low} to {high}, got {value}", None)
        return value

    def bool_(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise SpecError(f"{self._name(key)} must be a boolean, got {type(value).__name__}", None)
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.str_(key, default)
        if value not in choices:
            raise SpecError(f"{self._name(key)} must be one of {', '.join(choices)}, got {value!r}", None)
        return value

    def list_(self, key: str, max_items: int) -> list[Any]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise SpecError(f"{self._name(key)} must be an array, got {type(value).__name__}", None)
        if len(value) > max_items:
            raise SpecError(f"{self._name(key)} has {len(value)} items, at most {max_items} allowed", None)
        return value


def _abs_path(value: str, name: str) -> str:
    if not value.startswith("/") or "\0" in value or "\n" in value:
        raise SpecError(f"{name} must be an absolute path, got {value!r}", None)
    return value


def _disk(data: Any, where: str) -> DiskSpec:
    f = _Fields(data, where, {"path", "format", "device", "readonly", "shareable"})
    return DiskSpec(
        path=_abs_path(f.str_("path"), f"{where}.path"),
        format=f.choice("format", DISK_FORMATS, "raw"),
        device=f.choice("device", ("disk", "cdrom"), "disk"),
        readonly=f.bool_("readonly"),
        shareable=f.bool_("shareable"),
    )


def _nic(data: Any, where: str) -> NicSpec:
    f = _Fields(data, where, {"mac", "bridge", "network", "user", "model"})
    mac = f.str_("mac", "").lower() or random_mac()
    if not MAC_RE.match(mac) or int(mac[:2], 16) & 1:
        raise SpecError(f"{where}.mac {mac!r} is not a unicast MAC address", "write it as 02:00:00:aa:bb:cc")
    nic = NicSpec(
        mac=mac,
        bridge=f.str_("bridge", "", BRIDGE_RE),
        network=f.str_("network", "", BRIDGE_RE),
        user=f.bool_("user"),
        model=f.choice("model", NIC_MODELS, "virtio"),
    )
    if sum([bool(nic.bridge), bool(nic.network), nic.user]) != 1:
        raise SpecError(f"{where} needs exactly one of bridge, network or user", None)
    return nic


def _boot(value: Any) -> KernelBoot | None:
    if value is None or value == "disk":
        return None
    if isinstance(value, str):
        raise SpecError(f'boot must be "disk" or a struct with kernel/initrd/cmdline, got {value!r}', None)
    f = _Fields(value, "boot", {"kernel", "initrd", "cmdline"})
    initrd = f.str_("initrd", "")
    return KernelBoot(
        kernel=_abs_path(f.str_("kernel"), "boot.kernel"),
        initrd=_abs_path(initrd, "boot.initrd") if initrd else "",
        cmdline=f.str_("cmdline", ""),
    )


def parse_vm_spec(data: Any) -> VmSpec:
    """Validate a create_vm struct. Missing UUID → a new one; missing MACs → random ones."""
    f = _Fields(
        data,
        "spec",
        {
            "uuid",
            "name",
            "vcpus",
            "memory_mib",
            "virt_type",
            "boot",
            "disks",
            "nics",
            "console_log",
            "on_crash",
            "ha",
            "description",
        },
    )
    raw_uuid = f.str_("uuid", "")
    try:
        vm_uuid = str(uuid.UUID(raw_uuid)) if raw_uuid else str(uuid.uuid4())
    except ValueError as err:
        raise SpecError(f"uuid {raw_uuid!r} is not a UUID", None) from err
    virt_type = f.str_("virt_type", "")
    if virt_type and virt_type not in VIRT_TYPES:
        raise SpecError(f"virt_type must be one of {', '.join(VIRT_TYPES)}, got {virt_type!r}", None)
    disks = tuple(_disk(d, f"disks[{i}]") for i, d in enumerate(f.list_("disks", MAX_DISKS)))
    nics = tuple(_nic(n, f"nics[{i}]") for i, n in enumerate(f.list_("nics", MAX_NICS)))
    boot = _boot(data.get("boot"))
    if boot is None and not disks:
        raise SpecError("the VM has no disk to boot from", "add a disk or a boot struct with a kernel")
    console_log = f.str_("console_log", "")
    return VmSpec(
        uuid=vm_uuid,
        name=f.str_("name", None, NAME_RE),
        vcpus=f.int_("vcpus", 1, MAX_VCPUS, 1),
        memory_mib=f.int_("memory_mib", 16, MAX_MEMORY_MIB),
        virt_type=virt_type,
        kernel_boot=boot,
        disks=disks,
        nics=nics,
        console_log=_abs_path(console_log, "console_log") if console_log else "",
        on_crash=f.choice("on_crash", CRASH_ACTIONS, "destroy"),
        ha=f.bool_("ha"),
        description=f.str_("description", "")[:1024],
    )
