"""A tiny real guest for the QEMU test: the host's Debian kernel and a busybox initramfs built
here from Debian packages (busybox-static; evdev and button modules from linux-image-amd64) that
prints a marker on the serial console and powers off on the ACPI power button."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

MARKER = "AGENT-TEST-GUEST-UP"

INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
insmod /lib/evdev.ko
insmod /lib/button.ko
acpid -d -c /etc/acpi > /dev/console 2>&1 &  # -d: foreground, log to the console
echo {MARKER}
while true; do sleep 5; done
"""

POWER_BUTTON = "#!/bin/sh\necho power button pressed, powering off\npoweroff -f\n"


class GuestUnavailable(Exception):
    pass


def kernel_and_modules() -> tuple[Path, Path]:
    kernels = sorted(Path("/boot").glob("vmlinuz-*"))
    if not kernels:
        raise GuestUnavailable("no /boot/vmlinuz-*: install linux-image-amd64 (tools/setup.sh does)")
    kernel = kernels[-1]
    version = kernel.name.removeprefix("vmlinuz-")
    return kernel, Path("/lib/modules") / version


def build_initramfs(workdir: Path) -> tuple[Path, Path]:
    """Returns (kernel, initramfs)."""
    kernel, modules = kernel_and_modules()
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        raise GuestUnavailable("no /bin/busybox: install busybox-static")
    root = workdir / "initramfs"
    for d in ("bin", "proc", "sys", "dev", "lib", "etc/acpi/PWRF"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin/busybox")
    for mod in ("kernel/drivers/input/evdev.ko", "kernel/drivers/acpi/button.ko"):
        shutil.copy2(modules / mod, root / "lib" / Path(mod).name)
    (root / "init").write_text(INIT)
    (root / "etc/acpi/PWRF/00000080").write_text(POWER_BUTTON)
    for path in (root / "init", root / "etc/acpi/PWRF/00000080"):
        os.chmod(path, 0o755)
    files = subprocess.run(
        ["find", "."], cwd=root, check=True, capture_output=True, text=True
    ).stdout.encode()
    archive = subprocess.run(
        ["cpio", "--create", "--format=newc", "--quiet"],
        cwd=root,
        input=files,
        check=True,
        capture_output=True,
    ).stdout
    initramfs = workdir / "initramfs.cpio.gz"
    initramfs.write_bytes(gzip.compress(archive, compresslevel=1))
    return kernel, initramfs
