"""Disk discovery with pyudev: model, size, serial; the install medium and OEMDRV disks excluded."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyudev

from appliance.errors import UsageError

# Kernel names that are never install targets when discovered (a loop device may still be named
# explicitly with --target-disk, which is how the tests install onto disk images).
NEVER_DISCOVERED = ("loop", "ram", "zram", "sr", "fd", "md", "dm-", "nbd")
LIVE_MEDIUM_MOUNT = "/run/live/medium"


@dataclass(frozen=True)
class Disk:
    path: str  # /dev/sda
    name: str  # sda
    size_bytes: int
    model: str
    serial: str
    removable: bool = False

    def describe(self) -> str:
        serial = f", serial {self.serial}" if self.serial else ""
        return f"{self.path}  {human_size(self.size_bytes)}  {self.model or 'unknown model'}{serial}"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _attr(device: pyudev.Device, *names: str) -> str:
    for name in names:
        try:
            value = device.attributes.asstring(name)
        except (KeyError, UnicodeDecodeError, OSError):
            continue
        if value.strip():
            return value.strip()
    return ""


def _disk_from_device(device: pyudev.Device) -> Disk:
    model = device.properties.get("ID_MODEL", "").replace("_", " ") or _attr(device, "device/model")
    serial = (
        device.properties.get("ID_SERIAL_SHORT", "")
        or _attr(device, "device/serial", "serial")
        or device.properties.get("ID_SERIAL", "")
    )
    if not model and device.sys_name.startswith("loop"):
        model = f"loop device ({_attr(device, 'loop/backing_file') or 'no backing file'})"
    sectors = int(_attr(device, "size") or 0)
    return Disk(
        path=device.device_node or f"/dev/{device.sys_name}",
        name=device.sys_name,
        size_bytes=sectors * 512,
        model=model,
        serial=serial,
        removable=_attr(device, "removable") == "1",
    )


def mount_source(mountpoint: str, mountinfo: str) -> str | None:
    """The device mounted at ``mountpoint`` according to /proc/self/mountinfo text (pure)."""
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == mountpoint and " - " in line:
            after = line.split(" - ", 1)[1].split()
            if len(after) >= 2 and after[1].startswith("/dev/"):
                return after[1]
    return None


def mounted_devices(mountinfo: str) -> set[str]:
    devices = set()
    for line in mountinfo.splitlines():
        if " - " in line:
            after = line.split(" - ", 1)[1].split()
            if len(after) >= 2 and after[1].startswith("/dev/"):
                devices.add(after[1])
    return devices


def _read_mountinfo() -> str:
    return Path("/proc/self/mountinfo").read_text(encoding="utf-8")


def _parent_disk(context: pyudev.Context, node: str) -> pyudev.Device | None:
    try:
        device = pyudev.Devices.from_device_file(context, os.path.realpath(node))
    except (pyudev.DeviceNotFoundError, OSError, ValueError):
        return None
    if device.device_type == "disk":
        return device
    return device.find_parent("block", "disk")


def install_medium_disks(context: pyudev.Context, mountinfo: str) -> set[str]:
    """Kernel names of the disks holding the live medium and any OEMDRV kickstart disk."""
    names: set[str] = set()
    source = mount_source(LIVE_MEDIUM_MOUNT, mountinfo)
    if source:
        parent = _parent_disk(context, source)
        if parent is not None:
            names.add(parent.sys_name)
    for device in context.list_devices(subsystem="block"):
        if device.properties.get("ID_FS_LABEL") in ("OEMDRV",):
            parent = device if device.device_type == "disk" else device.find_parent("block", "disk")
            if parent is not None:
                names.add(parent.sys_name)
    return names


def list_candidate_disks(ignore: tuple[str, ...] = ()) -> list[Disk]:
    """Disks the installer may install onto, largest first."""
    context = pyudev.Context()
    excluded = install_medium_disks(context, _read_mountinfo())
    ignored = {name.removeprefix("/dev/") for name in ignore}
    disks = []
    for device in context.list_devices(subsystem="block", DEVTYPE="disk"):
        name = device.sys_name
        if name.startswith(NEVER_DISCOVERED) or name in excluded or name in ignored:
            continue
        if _attr(device, "ro") == "1":
            continue
        disk = _disk_from_device(device)
        if disk.size_bytes > 0:
            disks.append(disk)
    return sorted(disks, key=lambda d: (-d.size_bytes, d.name))


def describe_target(path: str) -> Disk:
    """The disk at ``path`` (any block device that is a whole disk, loop devices included)."""
    context = pyudev.Context()
    real = os.path.realpath(path)
    try:
        device = pyudev.Devices.from_device_file(context, real)
    except (pyudev.DeviceNotFoundError, OSError, ValueError) as err:
        raise UsageError(
            f"target disk {path} is not a block device: {err}",
            "name a whole disk such as /dev/sda (see the disk list in interactive mode)",
        ) from err
    if device.device_type != "disk":
        raise UsageError(
            f"target {path} is a partition, not a whole disk",
            "name the whole disk, e.g. /dev/sda rather than /dev/sda1",
        )
    if device.sys_name in install_medium_disks(context, _read_mountinfo()):
        raise UsageError(
            f"target {path} holds the install medium or the OEMDRV kickstart disk", "choose another disk"
        )
    disk = _disk_from_device(device)
    if disk.size_bytes == 0:
        raise UsageError(f"target disk {path} has size 0", "is the medium inserted / the image attached?")
    return disk


def partitions_in_use(disk: Disk) -> list[str]:
    """Partitions of ``disk`` (or the disk itself) that are mounted right now."""
    mounted = {os.path.realpath(d) for d in mounted_devices(_read_mountinfo())}
    context = pyudev.Context()
    device = pyudev.Devices.from_device_file(context, os.path.realpath(disk.path))
    nodes = [device.device_node] + [
        child.device_node for child in device.children if child.subsystem == "block"
    ]
    return sorted(node for node in nodes if node and node in mounted)
