"""What the live installer waits for: the disks before its first question, the early boot later.

The installer unit starts early in the boot: the initramfs already processed the block devices (its
udev database carries over in /run). NIC drivers are not in the initramfs (the root's udev coldplug
loads them) and /tmp is mounted with local-fs.target: the network question and the install itself
wait for the early boot (basic.target) and udev's queue.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from appliance.installer.disks import NEVER_DISCOVERED

EARLY_BOOT_STATE = "initializing"  # systemctl is-system-running, before basic.target


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


def wait_for_early_boot(timeout_s: float = 120.0, poll_s: float = 0.5) -> None:
    """Wait until systemd has left its early boot (udev's coldplug run, /tmp mounted), then for udev."""
    systemctl = shutil.which("systemctl")
    if systemctl and Path("/run/systemd/system").is_dir():
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = subprocess.run([systemctl, "is-system-running"], capture_output=True, text=True, check=False)
            if state.stdout.strip() != EARLY_BOOT_STATE:
                break
            time.sleep(poll_s)
    udevadm = _udevadm()
    if udevadm is not None:
        subprocess.run([udevadm, "settle", f"--timeout={int(timeout_s)}"], check=False)
