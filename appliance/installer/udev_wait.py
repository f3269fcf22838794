"""Waiting for udev on the live medium: for the disks at once, for the boot's coldplug later.

The installer unit starts early in the boot: the initramfs already processed the block devices (its
udev database carries over in /run), but NIC drivers are not in the initramfs; the root's coldplug
loads them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from appliance.installer.disks import NEVER_DISCOVERED

COLDPLUG_UNIT = "systemd-udev-trigger.service"


def _udevadm() -> str | None:
    udevadm = shutil.which("udevadm")
    return udevadm if udevadm and Path("/run/udev/control").exists() else None


def wait_command(udevadm: str, names: list[str], timeout_s: int) -> list[str]:
    return [udevadm, "wait", "--initialized=yes", f"--timeout={timeout_s}", *(f"/sys/class/block/{n}" for n in names)]


def wait_for_disks(timeout_s: int = 30, sys_class_block: Path = Path("/sys/class/block")) -> None:
    """Wait until udev has processed every disk the list could show (its model, serial, labels).

    Only those devices, not udev's whole queue (``udevadm settle``): on the live medium the
    initramfs already processed them and the root's coldplug replays every device on the system.
    """
    udevadm = _udevadm()
    if udevadm is None or not sys_class_block.is_dir():
        return
    names = sorted(p.name for p in sys_class_block.iterdir() if not p.name.startswith(NEVER_DISCOVERED))
    if names:
        subprocess.run(wait_command(udevadm, names, timeout_s), check=False)


def wait_for_coldplug(timeout_s: int = 60) -> None:
    """Wait until the boot's coldplug has run and udev's queue is empty (network devices named)."""
    systemctl = shutil.which("systemctl")
    if systemctl and Path("/run/systemd/system").is_dir():
        # joins the boot's start job: returns once the trigger has run (at once if it already has)
        try:
            subprocess.run([systemctl, "start", COLDPLUG_UNIT], check=False, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
    udevadm = _udevadm()
    if udevadm is not None:
        subprocess.run([udevadm, "settle", f"--timeout={timeout_s}"], check=False)
