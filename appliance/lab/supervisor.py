"""The lab's supervisor process (`appliance lab run`): owns the QEMUs, keeps status.json true, and
powers the hosts off on SIGTERM (`lab down`) or Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import traceback
from pathlib import Path
from types import FrameType

from appliance.errors import ApplianceError
from appliance.lab.status import HostStatus, LabStatus, write_status
from qemu_tests.driver import Driver
from qemu_tests.lab import Lab, LabConfig

UP_TIMEOUT = 7200
POWER_OFF_TIMEOUT = 180


class StopRequested(BaseException):
    """SIGTERM or SIGINT arrived (a BaseException, so retry loops and handlers of Exception let it through)."""


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


def ready_status(lab: Lab, pid: int) -> LabStatus:
    assert lab.secrets is not None
    hosts = tuple(
        HostStatus(m.name, m.config.ip, {str(p): m.host_port(p) for p in m.config.forward_ports})
        for m in lab.machines.values()
    )
    return LabStatus(state="ready", pid=pid, api_url=lab.api_url, admin_password=lab.secrets.admin_password,
                     root_password=lab.secrets.root_password, fingerprint=lab.secrets.fingerprint,
                     hosts=hosts)  # fmt: skip


def power_off_all(lab: Lab, timeout: float = POWER_OFF_TIMEOUT) -> None:
    """Press every host's power button at once, then wait; the Driver kills what is still up."""
    running = [m for m in lab.machines.values() if m.is_up()]
    for machine in running:
        try:
            machine.qmp.command("system_powerdown")
        except Exception as err:  # QMP gone: the machine is on its way down anyway
            print(f"lab: {machine.name}: {err}", flush=True)
    for machine in running:
        try:
            machine.wait_for_shutdown(timeout)
        except AssertionError:  # the harness's MachineError: the Driver stops it when the lab exits
            print(f"lab: {machine.name} did not power off within {timeout:.0f} s; stopping it", flush=True)


def run_lab(workdir: Path, servers: int) -> int:
    pid = os.getpid()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll would drown the progress
    workdir.mkdir(parents=True, exist_ok=True)
    write_status(workdir, LabStatus(state="starting", pid=pid, message=f"a manager and {servers} server(s)"))
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    started = time.monotonic()
    status: LabStatus | None = None
    try:
        with Driver(workdir / "results", global_timeout=UP_TIMEOUT) as driver:
            lab = Lab(LabConfig(workdir=workdir, servers=servers), driver)
            try:
                lab.up()
                lab.write_ssh_key()
                status = ready_status(lab, pid)
                write_status(workdir, status)
                print(f"lab: ready after {time.monotonic() - started:.0f} s", flush=True)
                threading.Event().wait()  # until a signal raises StopRequested
            except StopRequested:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second `lab down` must not cut this short
                print("lab: stopping: powering the hosts off", flush=True)
                if status is not None:
                    write_status(workdir, LabStatus(**{**status.__dict__, "state": "stopping"}))
                power_off_all(lab)
    except (ApplianceError, AssertionError, OSError) as err:
        message = str(err).splitlines()[0]
        traceback.print_exc()
        write_status(workdir, LabStatus(state="failed", pid=pid, message=message))
        return 1
    except StopRequested:
        pass
    write_status(workdir, LabStatus(state="down", pid=pid, message="stopped by `appliance lab down`"))
    print("lab: down", flush=True)
    return 0
