"""``Driver``: one test run: its machines, their shared segment, the results folder, the global
timeout, and on failure the last console lines of every machine.

    with Driver(results_dir, global_timeout=900) as driver:
        a = driver.add_machine(MachineConfig(name="a", number=1, kernel=..., initrd=...))
        a.start(); a.wait_for_shell(); a.succeed("ping -c 1 192.168.1.2")
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import psutil

from qemu_tests.accel import accel_args
from qemu_tests.machine import Machine, MachineConfig
from qemu_tests.network import VdeSwitch
from qemu_tests.retry import Deadline

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results"


def results_root() -> Path:
    """``APPLIANCE_E2E_RESULTS`` or ``qemu_tests/results`` (console logs, timings)."""
    return Path(os.environ.get("APPLIANCE_E2E_RESULTS", str(DEFAULT_RESULTS)))


def other_qemu_count(own_pids: frozenset[int] = frozenset()) -> int:
    """How many qemu-system processes run on this host besides ``own_pids`` (other engineers' boots)."""
    out = subprocess.run(["pgrep", "qemu-system"], capture_output=True, text=True).stdout.split()
    return len([pid for pid in out if int(pid) not in own_pids])


def wait_for_quiet_host(max_wait: float = 600, log: bool = True, own_pids: frozenset[int] = frozenset()) -> float:
    """Wait while other QEMU boots run (never two heavy runs at once on 2 cores); seconds waited.

    ``own_pids``: this run's own QEMUs (``Driver.qemu_pids()``), which do not count.
    """
    start = time.monotonic()
    announced = False
    while other_qemu_count(own_pids) > 0 and time.monotonic() - start < max_wait:
        if log and not announced:
            print("e2e: another QEMU is running; waiting for it to finish", file=sys.stderr)
            announced = True
        time.sleep(5)
    return time.monotonic() - start


class MemorySampler(threading.Thread):
    """Peak of the summed resident memory of a run's QEMUs, sampled every ``interval`` seconds."""

    def __init__(self, pids: Callable[[], frozenset[int]], interval: float = 2.0) -> None:
        super().__init__(name="qemu-memory", daemon=True)
        self.pids, self.interval = pids, interval
        self.peak_bytes, self.peak_hosts = 0, 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            total, hosts = 0, 0
            for pid in self.pids():
                try:
                    total += psutil.Process(pid).memory_info().rss
                    hosts += 1
                except psutil.Error:
                    pass
            if total > self.peak_bytes:
                self.peak_bytes, self.peak_hosts = total, hosts


class Driver:
    def __init__(self, results_dir: Path, global_timeout: float = 1800, accel: tuple[str, ...] | None = None) -> None:
        self.results_dir = results_dir
        self.deadline = Deadline(global_timeout)
        self.accel = accel if accel is not None else accel_args()
        self._state = Path(tempfile.mkdtemp(prefix="appliance-e2e-"))
        self.switch = VdeSwitch(self._state / "switch")
        self.machines: dict[str, Machine] = {}
        self.timings: dict[str, float] = {}
        self.memory = MemorySampler(self.qemu_pids)

    def __enter__(self) -> Driver:
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.switch.start()
        self.memory.start()
        return self

    def add_machine(self, config: MachineConfig) -> Machine:
        if config.name in self.machines:
            raise ValueError(f"two machines called {config.name}")
        if any(m.config.number == config.number for m in self.machines.values()):
            raise ValueError(f"machine number {config.number} is taken")
        machine = Machine(
            config, state_dir=self._state / config.name, results_dir=self.results_dir,
            accel=self.accel, deadline=self.deadline, switch=self.switch,
        )  # fmt: skip
        self.machines[config.name] = machine
        return machine

    def qemu_pids(self) -> frozenset[int]:
        """Process ids of this run's running QEMUs."""
        return frozenset(pid for m in self.machines.values() if (pid := m.pid) is not None)

    def wait_for_quiet_host(self, max_wait: float = 600) -> float:
        """Wait while QEMUs other than this run's own are running."""
        return wait_for_quiet_host(max_wait, own_pids=self.qemu_pids())

    def record(self, phase: str, seconds: float) -> None:
        """Keep a phase's time; written to ``timings.json`` in the results folder."""
        self.timings[phase] = round(seconds, 1)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc is not None:
                for machine in self.machines.values():
                    print(f"--- last console lines of {machine.name} ({machine.console_log}) ---\n"
                          f"{machine.console_tail()}", file=sys.stderr)  # fmt: skip
            for machine in self.machines.values():
                machine.crash()
            self.switch.stop()
            (self.results_dir / "timings.json").write_text(json.dumps(self.timings, indent=2) + "\n")
            self.memory.stopped.set()
            peak = {"peak_rss_bytes": self.memory.peak_bytes, "machines_running_then": self.memory.peak_hosts}
            (self.results_dir / "memory.json").write_text(json.dumps(peak, indent=2) + "\n")
        finally:
            shutil.rmtree(self._state, ignore_errors=True)
