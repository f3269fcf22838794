"""What the server has: hardware identity (DMI), network interfaces, block devices."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import psutil

from appliance.errors import ExternalCommandError

DMI_DIR = Path("/sys/class/dmi/id")
LSBLK_COLUMNS = "NAME,PATH,SIZE,TYPE,MODEL,SERIAL,WWN,FSTYPE,MOUNTPOINT,RO"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def dmi_identity(dmi_dir: Path = DMI_DIR) -> dict[str, str]:
    fields = ("sys_vendor", "product_name", "product_serial", "product_uuid", "bios_vendor", "bios_version")
    return {name: _read(dmi_dir / name) for name in fields}


def cpu_virtualization_flags(cpuinfo: str) -> list[str]:
    """Hardware virtualization flags (vmx, svm) named in /proc/cpuinfo text."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return sorted(flags & {"vmx", "svm"})


def network_interfaces() -> list[dict[str, Any]]:
    addrs = psutil.net_if_addrs()
    stats = psutil.net_if_stats()
    out = []
    for name in sorted(addrs.keys() | stats.keys()):
        st = stats.get(name)
        mac = ""
        ips = []
        for a in addrs.get(name, []):
            if a.family == psutil.AF_LINK:
                mac = a.address
            elif a.family in (socket.AF_INET, socket.AF_INET6):
                ips.append(
                    {
                        "family": "ipv4" if a.family == socket.AF_INET else "ipv6",
                        "address": a.address,
                        "netmask": a.netmask or "",
                    }
                )
        out.append(
            {
                "name": name,
                "mac": mac,
                "up": bool(st.isup) if st else False,
                "mtu": st.mtu if st else 0,
                "speed_mbps": st.speed if st else 0,
                "bridge": (Path("/sys/class/net") / name / "bridge").is_dir(),
                "addresses": ips,
            }
        )
    return out


def parse_lsblk(text: str) -> list[dict[str, Any]]:
    """``lsblk --json --bytes`` output → flat list of block devices (children get ``parent``)."""
    data = json.loads(text)
    out: list[dict[str, Any]] = []

    def walk(devices: list[dict[str, Any]], parent: str) -> None:
        for dev in devices:
            out.append(
                {
                    "name": dev.get("name") or "",
                    "path": dev.get("path") or "",
                    "size_bytes": int(dev.get("size") or 0),
                    "type": dev.get("type") or "",
                    "model": (dev.get("model") or "").strip(),
                    "serial": dev.get("serial") or "",
                    "wwn": dev.get("wwn") or "",
                    "fstype": dev.get("fstype") or "",
                    "mountpoint": dev.get("mountpoint") or "",
                    "readonly": bool(dev.get("ro")),
                    "parent": parent,
                }
            )
            walk(dev.get("children") or [], dev.get("name") or "")

    walk(data.get("blockdevices") or [], "")
    return out


def block_devices() -> list[dict[str, Any]]:
    cmd = ["lsblk", "--json", "--bytes", "--output", LSBLK_COLUMNS]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ExternalCommandError(f"lsblk failed: {err}", "install util-linux") from err
    if proc.returncode != 0:
        raise ExternalCommandError(f"lsblk failed: {proc.stderr.strip()}", "check that /sys is mounted")
    return parse_lsblk(proc.stdout)


def filesystems() -> list[dict[str, Any]]:
    out = []
    for part in psutil.disk_partitions(all=False):
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            continue
        out.append(
            {
                "device": part.device,
                "mountpoint": part.mountpoint,
                "fstype": part.fstype,
                "total_bytes": usage.total,
                "free_bytes": usage.free,
            }
        )
    return out
