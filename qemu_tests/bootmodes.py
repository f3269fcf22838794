"""QEMU command lines that boot an ISO the four ways hardware does: BIOS or UEFI, CD or USB stick.

Pure: the caller runs the command (never two QEMUs at once on a 2-core machine) and reads the
serial console, which goes to stdout (``-serial stdio``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")


@dataclass(frozen=True)
class BootMode:
    firmware: str  # "bios" | "uefi"
    medium: str  # "cd" | "usb"

    @property
    def name(self) -> str:
        return f"{self.firmware}-{self.medium}"


BOOT_MODES = tuple(BootMode(f, m) for f in ("bios", "uefi") for m in ("cd", "usb"))


def medium_args(iso: Path, medium: str) -> list[str]:
    if medium == "cd":
        return [
            "-drive", f"if=none,id=boot,media=cdrom,format=raw,readonly=on,file={iso}",
            "-device", "ide-cd,drive=boot,bus=ide.0,bootindex=0",
        ]  # fmt: skip
    if medium == "usb":
        # the ISO file written to a stick: a raw disk on USB mass storage; writes go to a snapshot
        return [
            "-device", "qemu-xhci,id=xhci",
            "-drive", f"if=none,id=boot,format=raw,snapshot=on,file={iso}",
            "-device", "usb-storage,bus=xhci.0,drive=boot,bootindex=0",
        ]  # fmt: skip
    raise ValueError(f"unknown boot medium {medium!r}")


def firmware_args(firmware: str, vars_copy: Path | None) -> list[str]:
    if firmware == "bios":
        return []
    if firmware == "uefi":
        if vars_copy is None:
            raise ValueError("UEFI boots need a writable copy of OVMF_VARS")
        return [
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}",
        ]  # fmt: skip
    raise ValueError(f"unknown firmware {firmware!r}")


def boot_command(
    iso: Path,
    mode: BootMode,
    accel: tuple[str, ...],
    *,
    memory_mb: int = 1024,
    vars_copy: Path | None = None,
) -> list[str]:
    return [
        "qemu-system-x86_64", "-machine", "q35", *accel, "-m", str(memory_mb), "-smp", "1",
        "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
        "-nic", "none",
        *firmware_args(mode.firmware, vars_copy),
        *medium_args(iso, mode.medium),
    ]  # fmt: skip
