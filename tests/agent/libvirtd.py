"""Runs the system libvirtd (and virtlogd) for the QEMU test on a machine without systemd.

An already running libvirtd is used as it is. Otherwise both daemons are started with pid files
in a temp dir and stopped by pid afterwards. QEMU runs as root (qemu.conf ``user``/``group``),
otherwise libvirt re-probes QEMU for ~44 s on every start here; that setting is written
idempotently."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import libvirt

from appliance.server import hypervisor

QEMU_CONF = Path("/etc/libvirt/qemu.conf")
MARK = "# appliance agent tests: run QEMU as root (else libvirt re-probes QEMU on every start here)"


def ensure_qemu_runs_as_root(conf: Path = QEMU_CONF) -> None:
    text = conf.read_text() if conf.exists() else ""
    if MARK in text:
        return
    lines = [ln.strip().replace(" ", "") for ln in text.splitlines()]
    if any(ln.startswith("user=") for ln in lines) or any(ln.startswith("group=") for ln in lines):
        return  # someone configured it deliberately: leave it
    conf.parent.mkdir(parents=True, exist_ok=True)
    with conf.open("a") as f:
        f.write(f'\n{MARK}\nuser = "root"\ngroup = "root"\n')


def _alive(uri: str) -> bool:
    hypervisor._ensure_event_loop()  # before this process opens its first connection
    try:
        libvirt.open(uri).close()
        return True
    except libvirt.libvirtError:
        return False


class Libvirtd:
    def __init__(self, workdir: Path, uri: str = "qemu:///system") -> None:
        self.workdir = workdir
        self.uri = uri
        self._pids: list[Path] = []

    def start(self) -> None:
        if _alive(self.uri):
            return
        ensure_qemu_runs_as_root()
        Path("/var/log/libvirt/qemu").mkdir(parents=True, exist_ok=True)  # the daemons log there
        for daemon in ("virtlogd", "libvirtd"):
            pidfile = self.workdir / f"{daemon}.pid"
            subprocess.run([f"/usr/sbin/{daemon}", "--daemon", "--pid-file", str(pidfile)], check=True)
            self._pids.append(pidfile)
        deadline = time.monotonic() + 30
        while not _alive(self.uri):
            if time.monotonic() > deadline:
                raise RuntimeError(f"libvirtd did not answer on {self.uri} within 30 s")
            time.sleep(0.2)

    def stop(self) -> None:
        for pidfile in reversed(self._pids):
            try:
                pid = int(pidfile.read_text().strip())
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.1)
        self._pids.clear()
