"""The hypervisor through libvirt: one connection (reopened if libvirtd restarts), domain
lifecycle, inventory, counters, and lifecycle events delivered to a callback.

Works with ``xen:///system`` (libxl), ``qemu:///system`` / ``qemu:///session`` and libvirt's
``test:///default``. Domains are persistent libvirt definitions, so guests outlive the agent: a
restarted agent simply re-attaches to libvirt's view."""

from __future__ import annotations

import logging
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import libvirt

from appliance.errors import ApplianceError
from appliance.server.domainxml import Flavor

log = logging.getLogger(__name__)


class HypervisorError(ApplianceError):
    """libvirt refused or failed an operation."""


class VmNotFound(HypervisorError):
    """No domain with that UUID."""


class VmStateError(HypervisorError):
    """The domain is not in a state that allows the operation."""


STATE_NAMES = {
    libvirt.VIR_DOMAIN_NOSTATE: "nostate",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutting_down",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended",
}
ACTIVE_STATES = {"running", "blocked", "paused", "shutting_down", "pmsuspended"}

_EVENT_NAMES = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined",
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "suspended",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "resumed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "crashed",
}
_STOPPED_DETAILS = {
    libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED: "destroyed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED: "migrated",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_SAVED: "saved",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED: "failed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT: "from_snapshot",
}
_STARTED_DETAILS = {
    libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED: "booted",
    libvirt.VIR_DOMAIN_EVENT_STARTED_MIGRATED: "migrated",
    libvirt.VIR_DOMAIN_EVENT_STARTED_RESTORED: "restored",
    libvirt.VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT: "from_snapshot",
    libvirt.VIR_DOMAIN_EVENT_STARTED_WAKEUP: "wakeup",
}


@dataclass(frozen=True)
class DomainInfo:
    uuid: str
    name: str
    state: str
    domain_id: int  # -1 when not running
    vcpus: int
    memory_kib: int
    max_memory_kib: int
    cpu_time_ns: int


@dataclass(frozen=True)
class LifecycleEvent:
    vm_uuid: str
    vm_name: str
    kind: str  # started | stopped | crashed | suspended | resumed | defined | undefined | ...
    detail: str


@dataclass(frozen=True)
class DeviceCounters:
    disk_read_bytes: int
    disk_write_bytes: int
    net_rx_bytes: int
    net_tx_bytes: int


EventSink = Callable[[LifecycleEvent], None]

_loop_lock = threading.Lock()
_loop_started = False


def _ensure_event_loop() -> None:
    """libvirt's default event loop, run by one daemon thread per process (must exist before the
    first connection is opened)."""
    global _loop_started
    with _loop_lock:
        if _loop_started:
            return
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # we report errors ourselves
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                if libvirt.virEventRunDefaultImpl() < 0:
                    log.error("libvirt event loop iteration failed")

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _loop_started = True


def _driver_of(conn_type: str) -> str:
    kind = conn_type.lower()
    if kind in ("xen", "libxl"):
        return "xen"
    if kind == "test":
        return "test"
    return "qemu"


def _translate(err: libvirt.libvirtError, what: str) -> HypervisorError:
    code = err.get_error_code()
    message = f"{what}: {err.get_error_message()}"
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return VmNotFound(message, "list the VMs on this server with list_vms")
    if code == libvirt.VIR_ERR_OPERATION_INVALID:
        return VmStateError(message, "check the VM state with get_vm_info first")
    return HypervisorError(message, "see the libvirtd log on the server")


class LibvirtHypervisor:
    """All libvirt calls of the agent go through this class."""

    def __init__(self, uri: str, on_event: EventSink | None = None) -> None:
        self.uri = uri
        self._on_event = on_event
        self._lock = threading.Lock()
        self._conn: libvirt.virConnect | None = None
        self._callback_id: int | None = None
        _ensure_event_loop()
        try:
            self._connection()
        except HypervisorError as err:  # the agent still serves; calls retry the connection
            log.warning("%s (the agent keeps retrying)", err)

    def available(self) -> bool:
        """Connect if needed; False (logged by the caller) while libvirt cannot be reached."""
        try:
            self._connection()
        except HypervisorError:
            return False
        return True

    # -- connection -------------------------------------------------------------------------------
    def _connection(self) -> libvirt.virConnect:
        with self._lock:
            conn = self._conn
            if conn is not None:
                try:
                    if conn.isAlive():
                        return conn
                except libvirt.libvirtError:
                    pass
                log.warning("libvirt connection to %s lost; reconnecting", self.uri)
                self._conn = None
            try:
                conn = libvirt.open(self.uri)
            except libvirt.libvirtError as err:
                raise HypervisorError(
                    f"cannot connect to the hypervisor at {self.uri}: {err.get_error_message()}",
                    "start libvirtd (and virtlogd) or pass the right --hypervisor URI",
                ) from err
            try:
                conn.setKeepAlive(5, 3)
            except libvirt.libvirtError:
                pass  # local drivers have no keepalive
            if self._on_event is not None:
                self._callback_id = conn.domainEventRegisterAny(
                    None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle, None
                )
            self._conn = conn
            return conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    if self._callback_id is not None:
                        self._conn.domainEventDeregisterAny(self._callback_id)
                    self._conn.close()
                except libvirt.libvirtError:
                    pass
                self._conn = None

    def _lifecycle(self, _conn: Any, dom: libvirt.virDomain, event: int, detail: int, _opaque: Any) -> None:
        kind = _EVENT_NAMES.get(event, f"event{event}")
        if event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
            detail_name = _STOPPED_DETAILS.get(detail, str(detail))
        elif event == libvirt.VIR_DOMAIN_EVENT_STARTED:
            detail_name = _STARTED_DETAILS.get(detail, str(detail))
        else:
            detail_name = str(detail)
        try:
            ev = LifecycleEvent(dom.UUIDString(), dom.name(), kind, detail_name)
            if self._on_event is not None:
                self._on_event(ev)
        except Exception:  # an exception must never escape into libvirt's event loop
            log.exception("handling a libvirt lifecycle event failed")

    # -- identity ---------------------------------------------------------------------------------
    def flavor(self, accel: str = "tcg") -> Flavor:
        return Flavor(_driver_of(self._connection().getType()), accel)

    def describe(self) -> dict[str, Any]:
        """The hypervisor's identity; with ``error`` (and empty versions) while it does not answer."""
        try:
            conn = self._connection()
        except HypervisorError as err:
            return {"uri": self.uri, "driver": "", "hypervisor_version": "", "libvirt_version": "",
                    "error": err.message}  # fmt: skip
        lib = conn.getLibVersion()
        try:
            hv_version = conn.getVersion()
        except libvirt.libvirtError:
            hv_version = 0
        return {
            "uri": self.uri,
            "driver": conn.getType(),
            "hypervisor_version": _version_text(hv_version),
            "libvirt_version": _version_text(lib),
        }

    # -- lifecycle --------------------------------------------------------------------------------
    def _domain(self, vm_uuid: str) -> libvirt.virDomain:
        try:
            return self._connection().lookupByUUIDString(vm_uuid)
        except libvirt.libvirtError as err:
            raise _translate(err, f"VM {vm_uuid}") from err

    def define(self, xml: str) -> str:
        try:
            return str(self._connection().defineXML(xml).UUIDString())
        except libvirt.libvirtError as err:
            raise _translate(err, "defining the VM failed") from err

    def start(self, vm_uuid: str) -> None:
        dom = self._domain(vm_uuid)
        try:
            if dom.isActive():  # drivers disagree on the error code for this; say it ourselves
                raise VmStateError(f"VM {vm_uuid} is already running", "stop it first")
            dom.create()
        except libvirt.libvirtError as err:
            raise _translate(err, f"starting VM {vm_uuid} failed") from err

    def shutdown(self, vm_uuid: str) -> None:
        """Ask the guest to power off (ACPI power button / Xen PV shutdown); returns at once."""
        dom = self._domain(vm_uuid)
        try:
            dom.shutdown()
        except libvirt.libvirtError as err:
            raise _translate(err, f"shutting down VM {vm_uuid} failed") from err

    def destroy(self, vm_uuid: str) -> None:
        dom = self._domain(vm_uuid)
        try:
            dom.destroy()
        except libvirt.libvirtError as err:
            raise _translate(err, f"forcing VM {vm_uuid} off failed") from err

    def undefine(self, vm_uuid: str) -> None:
        dom = self._domain(vm_uuid)
        try:
            dom.undefine()
        except libvirt.libvirtError as err:
            raise _translate(err, f"removing VM {vm_uuid} failed") from err

    # -- inventory and counters -------------------------------------------------------------------
    @staticmethod
    def _info(dom: libvirt.virDomain) -> DomainInfo:
        state, max_mem, mem, vcpus, cpu_time = dom.info()
        return DomainInfo(
            uuid=dom.UUIDString(),
            name=dom.name(),
            state=STATE_NAMES.get(state, "nostate"),
            domain_id=dom.ID() if dom.isActive() else -1,
            vcpus=vcpus,
            memory_kib=mem,
            max_memory_kib=max_mem,
            cpu_time_ns=cpu_time,
        )

    def info(self, vm_uuid: str) -> DomainInfo:
        dom = self._domain(vm_uuid)
        try:
            return self._info(dom)
        except libvirt.libvirtError as err:
            raise _translate(err, f"reading VM {vm_uuid} failed") from err

    def exists(self, vm_uuid: str) -> bool:
        try:
            self._connection().lookupByUUIDString(vm_uuid)
            return True
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            raise _translate(err, f"looking up VM {vm_uuid} failed") from err

    def list_domains(self) -> list[DomainInfo]:
        out = []
        for dom in self._connection().listAllDomains():
            try:
                out.append(self._info(dom))
            except libvirt.libvirtError:
                continue  # undefined while we listed
        return out

    def device_counters(self, vm_uuid: str) -> DeviceCounters:
        """Summed block and interface counters of a running domain."""
        dom = self._domain(vm_uuid)
        rd = wr = rx = tx = 0
        try:
            root = ET.fromstring(dom.XMLDesc())
        except (libvirt.libvirtError, ET.ParseError) as err:
            raise HypervisorError(f"reading the devices of VM {vm_uuid} failed: {err}", None) from err
        for target in root.findall("./devices/disk/target"):
            try:
                stats = dom.blockStats(target.get("dev", ""))
            except libvirt.libvirtError:
                continue
            rd += max(0, stats[1])
            wr += max(0, stats[3])
        for target in root.findall("./devices/interface/target"):
            try:
                stats = dom.interfaceStats(target.get("dev", ""))
            except libvirt.libvirtError:
                continue
            rx += max(0, stats[0])
            tx += max(0, stats[4])
        return DeviceCounters(rd, wr, rx, tx)

    def node_info(self) -> dict[str, Any]:
        conn = self._connection()
        model, memory_mib, cpus, mhz, nodes, sockets, cores, threads = conn.getInfo()
        return {
            "cpu_model": model,
            "cpus": cpus,
            "cpu_mhz": mhz,
            "numa_nodes": nodes,
            "sockets": sockets,
            "cores_per_socket": cores,
            "threads_per_core": threads,
            "memory_bytes": memory_mib * 1024 * 1024,
        }

    def node_cpu_times(self) -> tuple[int, int] | None:
        """(busy ns, total ns) summed over host CPUs, or None if the driver cannot tell."""
        try:
            stats = self._connection().getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS)
        except libvirt.libvirtError:
            return None
        idle = stats.get("idle", 0) + stats.get("iowait", 0)
        total = sum(v for k, v in stats.items() if k in ("user", "kernel", "idle", "iowait"))
        return total - idle, total

    def node_memory(self) -> tuple[int, int] | None:
        """(total bytes, free bytes) of the host as the hypervisor sees it, or None."""
        conn = self._connection()
        try:
            free = conn.getFreeMemory()
            total = conn.getInfo()[1] * 1024 * 1024
        except libvirt.libvirtError:
            return None
        return total, free


def _version_text(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"
