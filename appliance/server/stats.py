"""Statistics samples for the server and its running VMs, in the manager's metric names.

Counters (``*_bytes`` of disks and networks) are cumulative since boot / VM start; the manager
derives rates. CPU percentages are computed between two consecutive samples."""

from __future__ import annotations

import threading
import time
from typing import Any

import psutil

from appliance.server.hypervisor import ACTIVE_STATES, HypervisorError, LibvirtHypervisor

SERVER_METRICS = (
    "cpu_percent",
    "memory_used_bytes",
    "memory_total_bytes",
    "disk_read_bytes",
    "disk_write_bytes",
    "net_rx_bytes",
    "net_tx_bytes",
)
VM_METRICS = (
    "cpu_percent",
    "memory_bytes",
    "vcpus",
    "disk_read_bytes",
    "disk_write_bytes",
    "net_rx_bytes",
    "net_tx_bytes",
)


def _sample(object_type: str, object_id: str, metric: str, at: float, value: float) -> dict[str, Any]:
    return {"object_type": object_type, "object_id": object_id, "metric": metric, "time": at, "value": value}


def vm_cpu_percent(prev: tuple[int, float] | None, cpu_ns: int, at: float, vcpus: int) -> float:
    """CPU use of a VM since ``prev`` as percent of its vCPUs (0..100)."""
    if prev is None or at <= prev[1] or vcpus <= 0:
        return 0.0
    used = (cpu_ns - prev[0]) / 1e9
    return max(0.0, min(100.0, 100.0 * used / ((at - prev[1]) * vcpus)))


class StatsSampler:
    def __init__(self, hypervisor: LibvirtHypervisor, server_uuid: str) -> None:
        self.hv = hypervisor
        self.server_uuid = server_uuid
        self._lock = threading.Lock()
        self._vm_cpu: dict[str, tuple[int, float]] = {}
        self.last: list[dict[str, Any]] = []
        psutil.cpu_percent(None)  # baseline for the first server sample

    def _server(self, at: float) -> list[dict[str, Any]]:
        memory = self.hv.node_memory() if self.hv.flavor().driver == "xen" else None
        if memory is None:
            vm = psutil.virtual_memory()
            total, used = vm.total, vm.total - vm.available
        else:
            total, used = memory[0], memory[0] - memory[1]
        disk = psutil.disk_io_counters(perdisk=False)
        nics = psutil.net_io_counters(pernic=True)
        rx = sum(c.bytes_recv for name, c in nics.items() if name != "lo")
        tx = sum(c.bytes_sent for name, c in nics.items() if name != "lo")
        values = {
            "cpu_percent": float(psutil.cpu_percent(None)),
            "memory_used_bytes": float(used),
            "memory_total_bytes": float(total),
            "disk_read_bytes": float(disk.read_bytes if disk else 0),
            "disk_write_bytes": float(disk.write_bytes if disk else 0),
            "net_rx_bytes": float(rx),
            "net_tx_bytes": float(tx),
        }
        return [_sample("server", self.server_uuid, m, at, values[m]) for m in SERVER_METRICS]

    def _vms(self, at: float) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen = set()
        for info in self.hv.list_domains():
            if info.state not in ACTIVE_STATES:
                continue
            seen.add(info.uuid)
            try:
                io = self.hv.device_counters(info.uuid)
            except HypervisorError:
                continue  # stopped while we sampled
            cpu = vm_cpu_percent(self._vm_cpu.get(info.uuid), info.cpu_time_ns, at, info.vcpus)
            self._vm_cpu[info.uuid] = (info.cpu_time_ns, at)
            values = {
                "cpu_percent": cpu,
                "memory_bytes": float(info.memory_kib * 1024),
                "vcpus": float(info.vcpus),
                "disk_read_bytes": float(io.disk_read_bytes),
                "disk_write_bytes": float(io.disk_write_bytes),
                "net_rx_bytes": float(io.net_rx_bytes),
                "net_tx_bytes": float(io.net_tx_bytes),
            }
            out.extend(_sample("vm", info.uuid, m, at, values[m]) for m in VM_METRICS)
        for gone in set(self._vm_cpu) - seen:
            del self._vm_cpu[gone]
        return out

    def sample(self) -> list[dict[str, Any]]:
        with self._lock:
            at = time.time()
            samples = self._server(at) + self._vms(at)
            self.last = samples
            return samples
