"""Which QEMU accelerator works here: KVM if it can really boot a kernel, else TCG.

/dev/kvm may exist yet be unable to run a stock kernel (the guest hangs burning system time), so
we boot a real kernel under KVM with a short timeout and look for the kernel's panic about a
missing root filesystem (proof that the kernel ran to the end of its init). The answer is cached
per process; APPLIANCE_QEMU_ACCEL=kvm|tcg skips the probe.
"""

from __future__ import annotations

import functools
import os
import select
import subprocess
import time
from pathlib import Path

QEMU = "qemu-system-x86_64"
TCG_ARGS = ("-accel", "tcg", "-cpu", "qemu64")
KVM_ARGS = ("-accel", "kvm", "-cpu", "host")
PROBE_SUCCESS = (b"Kernel panic", b"VFS: Unable to mount root")


def find_host_kernel(boot: Path = Path("/boot")) -> Path | None:
    kernels = sorted(boot.glob("vmlinuz-*"))
    return kernels[-1] if kernels else None


def probe_command(kernel: Path) -> list[str]:
    return [
        QEMU, *KVM_ARGS, "-m", "256", "-nodefaults", "-display", "none", "-no-reboot",
        "-serial", "stdio", "-monitor", "none",
        "-kernel", str(kernel), "-append", "console=ttyS0 panic=-1 quiet loglevel=3",
    ]  # fmt: skip


def kvm_boots(kernel: Path | None = None, timeout: float = 20.0) -> bool:
    """True if a stock kernel boots to its root-mount panic under KVM within ``timeout`` seconds."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    kernel = kernel or find_host_kernel()
    if kernel is None:
        return False
    proc = subprocess.Popen(probe_command(kernel), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
                if any(s in seen for s in PROBE_SUCCESS):
                    return True
            elif proc.poll() is not None:
                break
        return False
    finally:
        proc.kill()
        proc.wait()


@functools.lru_cache(maxsize=1)
def accel_args() -> tuple[str, ...]:
    """QEMU arguments selecting the accelerator and CPU model for this machine."""
    forced = os.environ.get("APPLIANCE_QEMU_ACCEL", "").lower()
    if forced == "tcg":
        return TCG_ARGS
    if forced == "kvm":
        return KVM_ARGS
    return KVM_ARGS if kvm_boots() else TCG_ARGS


if __name__ == "__main__":
    print(" ".join(accel_args()))
