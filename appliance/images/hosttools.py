"""Host programs the image build runs, and the Debian package that provides each."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from appliance.errors import ConfigError

# program -> Debian package (bookworm)
TOOL_PACKAGES: dict[str, str] = {
    "mmdebstrap": "mmdebstrap",
    "mksquashfs": "squashfs-tools",
    "grub-mkimage": "grub-common",
    "mkfs.fat": "dosfstools",
    "mcopy": "mtools",
    "mmd": "mtools",
    "tar": "tar",
    "chroot": "coreutils",
    "xorriso": "xorriso",
    "sgdisk": "gdisk",
}

# data files -> Debian package
FILE_PACKAGES: dict[str, str] = {
    "/usr/lib/ISOLINUX/isolinux.bin": "isolinux",
    "/usr/lib/syslinux/modules/bios/ldlinux.c32": "syslinux-common",
    "/usr/lib/grub/x86_64-efi/linux.mod": "grub-efi-amd64-bin",
}

BUILD_TOOLS = ("mmdebstrap", "mksquashfs", "grub-mkimage", "mkfs.fat", "mcopy", "mmd", "tar", "chroot")


def missing_tools(
    tools: Iterable[str], files: Iterable[str] = (), tool_packages: dict[str, str] = TOOL_PACKAGES
) -> list[str]:
    """Debian packages that provide the tools/files not found on this host (sorted, unique)."""
    packages = {tool_packages.get(t, t) for t in tools if shutil.which(t) is None}
    packages |= {FILE_PACKAGES[f] for f in files if not Path(f).exists()}
    return sorted(packages)


def require(
    tools: Iterable[str], files: Iterable[str] = (), tool_packages: dict[str, str] = TOOL_PACKAGES
) -> None:
    """Raise a ConfigError naming the Debian packages to install when a host tool is missing."""
    packages = missing_tools(tools, files, tool_packages)
    if packages:
        raise ConfigError(
            f"host tools for the image build are missing (Debian packages: {', '.join(packages)})",
            hint=f"apt-get install {' '.join(packages)}   (or run tools/setup.sh)",
        )
