"""A real tiny guest (Debian kernel + busybox initramfs) through the agent with libvirt
qemu:///system and TCG: start and stop events reach the manager side, and an agent restart with
the guest running re-attaches without restarting it and loses or duplicates no queued event."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from .conftest import PASSWORD, ManagerIdentity
from .guest import MARKER, build_initramfs
from .libvirtd import Libvirtd
from .receiver import IngestReceiver

pytestmark = pytest.mark.e2e

URI = "qemu:///system"


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def libvirtd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Libvirtd]:
    daemon = Libvirtd(tmp_path_factory.mktemp("libvirtd"), URI)
    daemon.start()
    yield daemon
    daemon.stop()


class AgentProcess:
    """``appliance agent serve`` as a real process."""

    def __init__(self, state_dir: Path, port: int) -> None:
        self.state_dir = state_dir
        self.port = port
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "appliance",
            "agent",
            "serve",
            "--state-dir",
            str(self.state_dir),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--hypervisor",
            URI,
        ]
        with (self.state_dir.parent / "agent.log").open("a") as log:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the first stdout line; logs go to agent.log
        if "listening on https://127.0.0.1:" not in line:
            self.proc.kill()
            log_text = (self.state_dir.parent / "agent.log").read_text()
            raise AssertionError(f"the agent did not start: {line}\n{log_text[-3000:]}")
        self.port = int(line.split("https://127.0.0.1:")[1].split("/")[0])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.proc = None


def _proxy(agent: AgentProcess, manager: ManagerIdentity | None):  # type: ignore[no-untyped-def]
    import ssl
    import xmlrpc.client

    ctx = ssl.create_default_context(cafile=str(agent.state_dir / "tls/agent.crt"))
    if manager is None:
        return xmlrpc.client.ServerProxy(f"https://oracle:{PASSWORD}@127.0.0.1:{agent.port}/", context=ctx)
    ctx.load_cert_chain(manager.cert_path, manager.key_path)
    return xmlrpc.client.ServerProxy(f"https://127.0.0.1:{agent.port}/", context=ctx)


def _vm_lifecycle(recv: IngestReceiver, vm: str) -> list[str]:
    with recv.lock:
        events = {key[1]: ev for key, ev in recv.received.events.items()}
        ordered = [events[i] for i in recv.received.event_order]
    return [e["type"] for e in ordered if e["object_id"] == vm and e["type"] in ("vm.started", "vm.stopped")]


def test_real_guest_lifecycle_events_and_agent_restart(
    libvirtd: Libvirtd, tmp_path: Path, manager: ManagerIdentity, receiver: IngestReceiver
) -> None:
    kernel, initramfs = build_initramfs(tmp_path)
    state = tmp_path / "agent"
    subprocess.run(
        [sys.executable, "-m", "appliance", "agent", "set-password", "--state-dir", str(state)],
        input=PASSWORD,
        text=True,
        check=True,
        capture_output=True,
    )
    agent = AgentProcess(state, 0)
    agent.start()
    conn = libvirt.open(URI)
    vm = ""
    try:
        server_uuid = _proxy(agent, None).discover_server()["server_uuid"]
        from appliance import pki

        public_key = pki.load_cert(state / "tls/agent.crt").public_key()
        client_cert = pki.cert_pem(pki.issue_leaf(manager.ca, public_key, server_uuid, server=False)).decode()  # type: ignore[arg-type]
        _proxy(agent, None).take_ownership(
            manager.uuid, manager.ca_pem, receiver.event_url, receiver.statistics_url, client_cert
        )
        rpc = _proxy(agent, manager)
        console = state / "console" / "guest.log"
        spec = {
            "name": f"tiny-{uuid.uuid4().hex[:8]}",
            "vcpus": 1,
            "memory_mib": 192,
            "boot": {
                "kernel": str(kernel),
                "initrd": str(initramfs),
                "cmdline": "console=ttyS0 quiet init_on_alloc=0 panic=-1",
            },
            "console_log": str(console),
        }
        vm = rpc.create_vm(spec)["uuid"]
        t0 = time.monotonic()
        rpc.start_vm(vm)
        _wait_for(
            lambda: console.exists() and MARKER in console.read_text(errors="replace"),
            90,
            "the guest to boot",
        )
        print(f"guest booted in {time.monotonic() - t0:.1f} s")
        _wait_for(lambda: _vm_lifecycle(receiver, vm) == ["vm.started"], 15, "vm.started at the manager")

        # Manager down, an event queued (the agent restarts), agent restarted with the guest running.
        receiver.stop()
        domain_id = conn.lookupByUUIDString(vm).ID()
        qemu_pid = (Path("/run/libvirt/qemu") / f"{spec['name']}.pid").read_text().strip()
        agent.stop()
        assert conn.lookupByUUIDString(vm).isActive(), "stopping the agent stopped the guest"
        agent.start()
        rpc = _proxy(agent, manager)
        info = rpc.get_vm_info(vm)
        assert info["state"] == "running" and info["domain_id"] == domain_id
        assert (Path("/run/libvirt/qemu") / f"{spec['name']}.pid").read_text().strip() == qemu_pid
        assert rpc.discover_server()["outbox"]["events"] >= 1  # agent.started is waiting

        # Clean stop through the ACPI power button while the manager is still away.
        assert rpc.stop_vm(vm)["action"] == "shutdown"
        _wait_for(lambda: not conn.lookupByUUIDString(vm).isActive(), 60, "the guest to power off")
        receiver.start()
        _wait_for(lambda: _vm_lifecycle(receiver, vm) == ["vm.started", "vm.stopped"], 30, "vm.stopped")
        with receiver.lock:
            stopped = [e for e in receiver.received.events.values() if e["type"] == "vm.stopped"]
            started_agents = [e for e in receiver.received.events.values() if e["type"] == "agent.started"]
        assert "shut down" in stopped[0]["message"]
        assert len(started_agents) == 2 and receiver.received.duplicates == 0
        assert all(k[0] == server_uuid for k in receiver.received.events)
        assert rpc.delete_vm(vm) is True
        vm = ""
    finally:
        if vm:
            try:
                dom = conn.lookupByUUIDString(vm)
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            except libvirt.libvirtError:
                pass
        conn.close()
        agent.stop()
        os.sync()
