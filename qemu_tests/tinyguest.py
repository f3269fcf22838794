"""A tiny real guest for testing the harness: the host's Debian kernel (/boot) and a busybox
initramfs built here (busybox-static; e1000, virtio-blk and ACPI button modules from the kernel's
own tree). It configures its NICs from the kernel command line, then gives a root shell on ttyS0
and powers off on the ACPI power button."""

from __future__ import annotations

import dataclasses
import gzip
import os
import shutil
import subprocess
from pathlib import Path

from appliance.errors import ApplianceError
from qemu_tests.machine import MachineConfig

# in load order (each after what it needs, as modules.dep says)
MODULES = (
    "kernel/drivers/input/evdev.ko",
    "kernel/drivers/acpi/button.ko",
    "kernel/drivers/net/ethernet/intel/e1000/e1000.ko",
    "kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/virtio/virtio.ko",
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
    "kernel/drivers/virtio/virtio_pci.ko",
    "kernel/drivers/block/virtio_blk.ko",
)

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp /www
echo 1 > /proc/sys/kernel/printk
for m in /lib/modules/*.ko; do insmod "$m"; done
acpid -f -c /etc/acpi -p /tmp/acpid.pid -l /tmp/acpid.log &
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p"; }
hostname "$(arg harness.name)"
ifname_of() { for d in /sys/class/net/*; do [ "$(cat $d/address)" = "$1" ] && basename $d; done; }
ip link set lo up
lan=$(ifname_of "$(arg harness.mac)")
if [ -n "$lan" ]; then ip link set "$lan" up; ip addr add "$(arg harness.ip)/24" dev "$lan"; fi
hostnic=$(ifname_of "$(arg harness.hostmac)")
if [ -n "$hostnic" ]; then ip link set "$hostnic" up; ip addr add 10.0.2.15/24 dev "$hostnic"; fi
echo TINYGUEST-READY
while true; do setsid sh -c 'exec sh </dev/ttyS0 >/dev/ttyS0 2>&1'; done
"""

POWER_BUTTON = "#!/bin/sh\npoweroff -f\n"


def kernel_and_modules() -> tuple[Path, Path]:
    kernels = sorted(Path("/boot").glob("vmlinuz-*"))
    if not kernels:
        raise ApplianceError("no /boot/vmlinuz-*", "install linux-image-amd64 (tools/setup.sh does)")
    kernel = kernels[-1]
    return kernel, Path("/lib/modules") / kernel.name.removeprefix("vmlinuz-")


def build_initramfs(workdir: Path) -> tuple[Path, Path]:
    """Build the initramfs under ``workdir``; returns (kernel, initramfs)."""
    kernel, modules = kernel_and_modules()
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        raise ApplianceError("no /bin/busybox", "install busybox-static (tools/setup.sh does)")
    root = workdir / "tinyguest-root"
    shutil.rmtree(root, ignore_errors=True)
    for d in ("bin", "proc", "sys", "dev", "lib/modules", "etc/acpi/PWRF"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin/busybox")
    for i, mod in enumerate(MODULES):
        shutil.copy2(modules / mod, root / "lib/modules" / f"{i:02d}-{Path(mod).name}")
    (root / "init").write_text(INIT)
    (root / "etc/acpi/PWRF/00000080").write_text(POWER_BUTTON)
    for path in (root / "init", root / "etc/acpi/PWRF/00000080"):
        os.chmod(path, 0o755)
    return kernel, pack_initramfs(root, workdir / "tinyguest.cpio.gz")


def pack_initramfs(root: Path, output: Path) -> Path:
    """``root`` as a gzipped newc cpio archive."""
    names = subprocess.run(["find", "."], cwd=root, check=True, capture_output=True).stdout
    archive = subprocess.run(
        ["cpio", "--create", "--format=newc", "--quiet"], cwd=root, input=names, check=True, capture_output=True
    ).stdout
    output.write_bytes(gzip.compress(archive, compresslevel=1))
    return output


PV_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
echo PV-GUEST-UP
while true; do setsid sh -c 'exec sh </dev/hvc0 >/dev/hvc0 2>&1'; sleep 1; done
"""


def build_pv_initramfs(workdir: Path) -> Path:
    """A busybox initramfs (~1 MB) for a Xen PV guest booted with a Debian kernel: a shell on hvc0.
    The distribution's own 40 MB initrd takes a minute to load under TCG."""
    root = workdir / "pvguest-root"
    shutil.rmtree(root, ignore_errors=True)
    for d in ("bin", "proc", "dev"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path("/bin/busybox"), root / "bin/busybox")
    (root / "init").write_text(PV_INIT)
    os.chmod(root / "init", 0o755)
    return pack_initramfs(root, workdir / "pvguest.cpio.gz")


def tiny_machine(config: MachineConfig, kernel: Path, initrd: Path) -> MachineConfig:
    """``config`` booting the tiny guest, its addresses passed on the kernel command line."""
    append = (
        f"console=ttyS0 quiet loglevel=1 init_on_alloc=0 panic=-1 harness.name={config.name} "
        f"harness.mac={config.mac} harness.ip={config.ip} harness.hostmac={config.host_mac}"
    )
    return dataclasses.replace(config, kernel=kernel, initrd=initrd, append=append)
