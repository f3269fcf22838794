"""The installed system's kernel and initrd, taken from the live medium.

The ISO carries one copy of the kernel and its initrd (/live/vmlinuz, /live/initrd.img: they boot
the live system); the root filesystem image leaves them out of /boot. The installer copies them to
the target's /boot under their Debian names, where GRUB's menu and update-initramfs expect them.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ConfigError

MEDIUM_KERNEL = "live/vmlinuz"
MEDIUM_INITRD = "live/initrd.img"
MODULE_DIRS = ("usr/lib/modules", "lib/modules")


@dataclass(frozen=True)
class LiveKernel:
    version: str  # the kernel release, e.g. 6.1.0-13-amd64
    kernel: Path  # files on the live medium
    initrd: Path

    @property
    def size(self) -> int:
        return self.kernel.stat().st_size + self.initrd.stat().st_size


def kernel_release(source_root: Path) -> str:
    """The one kernel release the root filesystem has modules for."""
    for rel in MODULE_DIRS:
        modules = source_root / rel
        if modules.is_dir() and not modules.is_symlink():
            releases = sorted(p.name for p in modules.iterdir() if p.is_dir())
            if len(releases) == 1:
                return releases[0]
            raise ConfigError(f"expected modules of exactly one kernel in {modules}, found {releases}",
                              "the live image must hold one kernel; rebuild it")
    raise ConfigError(f"no kernel modules in {source_root} (/usr/lib/modules)",
                      "the live image must hold one kernel; rebuild it")


def from_medium(source_root: Path, medium: Path) -> LiveKernel | None:
    """The kernel to copy from ``medium``; None when the source root has its own in /boot."""
    if any((source_root / "boot").glob("vmlinuz-*")):
        return None
    kernel, initrd = medium / MEDIUM_KERNEL, medium / MEDIUM_INITRD
    if not (kernel.is_file() and initrd.is_file()):
        raise ConfigError(
            f"the system to install has no kernel in /boot and the live medium {medium} has no "
            f"{MEDIUM_KERNEL} and {MEDIUM_INITRD}",
            "boot the installer from the appliance ISO (or give --medium its mount point)",
        )
    return LiveKernel(version=kernel_release(source_root), kernel=kernel, initrd=initrd)


def copy_to(live: LiveKernel, target: Path) -> list[Path]:
    """Copy the pair into ``target``/boot as vmlinuz-VERSION and initrd.img-VERSION."""
    boot = target / "boot"
    boot.mkdir(parents=True, exist_ok=True)
    copied = []
    for src, name in ((live.kernel, f"vmlinuz-{live.version}"), (live.initrd, f"initrd.img-{live.version}")):
        dest = boot / name
        shutil.copyfile(src, dest)
        dest.chmod(0o644)
        copied.append(dest)
    return copied
