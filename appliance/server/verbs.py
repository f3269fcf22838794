"""The agent's XML-RPC verbs. Each docstring is the reference text of docs/agent-api.md
(``python -m appliance.server.apidoc`` renders it)."""

from __future__ import annotations

import socket
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance import __version__
from appliance.errors import ConfigError
from appliance.server import discovery, tls
from appliance.server.dispatch import Caller, ForbiddenError, NotFoundError, StateError, verb
from appliance.server.domainxml import build_domain_xml
from appliance.server.events import make_event
from appliance.server.hypervisor import ACTIVE_STATES, VmStateError
from appliance.server.passwords import check_new_password, hash_password
from appliance.server.store import Ownership
from appliance.server.vmspec import SpecError, parse_vm_spec

if TYPE_CHECKING:
    from appliance.server.agent import Agent

API_VERSION = 1
MIN_INTERVAL, MAX_INTERVAL = 1, 3600


def _check_uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as err:
        raise SpecError(f"{what} {value[:80]!r} is not a UUID", None) from err


def _check_https_url(value: str, what: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(f"{what} {value[:200]!r} is not an https:// URL", "give the manager's https URL")
    return value


class AgentVerbs:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    # -- discovery --------------------------------------------------------------------------------
    @verb
    def discover_server(self, caller: Caller) -> dict[str, Any]:
        """Identity and status of this server and its agent.

        Returns a struct: ``server_uuid``, ``hostname``, ``agent_version``, ``api_version``,
        ``hypervisor`` (``uri``, ``driver``, ``hypervisor_version``, ``libvirt_version``),
        ``owned`` (bool), ``manager_uuid`` ("" when not owned), ``statistics_interval`` (seconds),
        ``certificate_fingerprint`` (SHA-256 of the agent's TLS certificate), ``outbox``
        (``events``, ``samples`` waiting to be pushed), ``time`` (agent clock, unix seconds)."""
        a = self.agent
        own = a.store.get_ownership()
        return {
            "server_uuid": a.server_uuid,
            "hostname": socket.gethostname(),
            "agent_version": __version__,
            "api_version": API_VERSION,
            "hypervisor": a.hv.describe(),
            "owned": own is not None,
            "manager_uuid": own.manager_uuid if own else "",
            "statistics_interval": a.statistics_interval(),
            "certificate_fingerprint": tls.fingerprint_sha256(a.paths.certificate.read_bytes()),
            "outbox": a.outbox.pending(),
            "time": time.time(),
        }

    @verb
    def discover_hardware(self, caller: Caller) -> dict[str, Any]:
        """CPU, memory and firmware identity of the host.

        Returns a struct: ``cpu_model``, ``cpus``, ``cpu_mhz``, ``numa_nodes``, ``sockets``,
        ``cores_per_socket``, ``threads_per_core``, ``memory_bytes`` (as the hypervisor sees
        them), ``virtualization_flags`` (``vmx``/``svm`` if present) and ``dmi`` (``sys_vendor``,
        ``product_name``, ``product_serial``, ``product_uuid``, ``bios_vendor``, ``bios_version``;
        "" where the firmware does not say)."""
        info = self.agent.hv.node_info()
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
        info["virtualization_flags"] = discovery.cpu_virtualization_flags(cpuinfo)
        info["dmi"] = discovery.dmi_identity()
        return info

    @verb
    def discover_network(self, caller: Caller) -> dict[str, Any]:
        """Network interfaces of the host.

        Returns ``{"interfaces": [...]}``, each with ``name``, ``mac``, ``up``, ``mtu``,
        ``speed_mbps``, ``bridge`` (bool: the interface is a Linux bridge guests can join) and
        ``addresses`` (``family`` ipv4/ipv6, ``address``, ``netmask``)."""
        return {"interfaces": discovery.network_interfaces()}

    @verb
    def discover_storage(self, caller: Caller) -> dict[str, Any]:
        """Block devices and mounted file systems of the host.

        Returns ``{"block_devices": [...], "filesystems": [...]}``. Block devices (from lsblk):
        ``name``, ``path``, ``size_bytes``, ``type`` (disk/part/lvm/rom/...), ``model``,
        ``serial``, ``wwn``, ``fstype``, ``mountpoint``, ``readonly``, ``parent``. File systems:
        ``device``, ``mountpoint``, ``fstype``, ``total_bytes``, ``free_bytes``."""
        return {"block_devices": discovery.block_devices(), "filesystems": discovery.filesystems()}

    # -- ownership --------------------------------------------------------------------------------
    @verb
    def take_ownership(
        self,
        caller: Caller,
        manager_uuid: str,
        ca_pem: str,
        event_url: str,
        statistics_url: str,
        client_cert_pem: str = "",
    ) -> dict[str, Any]:
        """Make the calling manager the owner of this server.

        ``ca_pem``: the manager CA certificate (PEM). From now on the agent accepts only TLS client
        certificates issued by this CA whose common name is ``manager_uuid``; password logins
        stop working and open password connections are refused on their next request.
        ``event_url`` / ``statistics_url``: where the agent POSTs events and statistics (https).
        ``client_cert_pem`` (optional): a certificate the manager CA issued for the agent's own
        public key (the key of the agent's TLS certificate on port 8899) with common name =
        ``server_uuid``; the agent presents it when pushing. Without it, events and statistics
        stay queued. Calling it again as the owner updates the URLs and certificate; another
        manager gets Fault 4 until the owner calls ``release_ownership``.
        Returns ``server_uuid``, ``manager_uuid``, ``owned`` (true), ``push_certificate`` (bool)."""
        a = self.agent
        manager_uuid = _check_uuid(manager_uuid, "manager_uuid")
        current = a.store.get_ownership()
        if current is not None and current.manager_uuid != manager_uuid:
            raise ForbiddenError(
                f"this server is owned by manager {current.manager_uuid}",
                "that manager must call release_ownership first",
            )
        tls.load_ca_pem(ca_pem)
        _check_https_url(event_url, "event_url")
        _check_https_url(statistics_url, "statistics_url")
        cert_path: str | None = current.client_cert_path if current else None
        if client_cert_pem:
            tls.check_issued_client_certificate(client_cert_pem, ca_pem, a.paths.key, a.server_uuid)
            tls.write_file_atomic(a.paths.client_certificate, client_cert_pem.encode())
            cert_path = str(a.paths.client_certificate)
        tls.write_file_atomic(a.paths.manager_ca, ca_pem.encode())
        own = Ownership(
            manager_uuid=manager_uuid,
            ca_pem=ca_pem,
            event_url=event_url,
            statistics_url=statistics_url,
            client_cert_path=cert_path,
            client_key_path=str(a.paths.key) if cert_path else None,
            taken_at=time.time(),
        )
        a.store.set_ownership(own)
        a.trust.update(own)
        a.record_event(
            make_event("server.owned", "server", a.server_uuid, f"server owned by manager {manager_uuid}")
        )
        return {
            "server_uuid": a.server_uuid,
            "manager_uuid": manager_uuid,
            "owned": True,
            "push_certificate": cert_path is not None,
        }

    @verb
    def release_ownership(self, caller: Caller, manager_uuid: str) -> dict[str, Any]:
        """Give up ownership by ``manager_uuid`` (only the owner can call it). The agent goes
        back to password logins, forgets the manager CA and client certificate, and drops queued
        statistics (queued events stay for the next owner). Returns ``server_uuid``, ``owned``
        (false)."""
        a = self.agent
        manager_uuid = _check_uuid(manager_uuid, "manager_uuid")
        current = a.store.get_ownership()
        if current is None:
            raise StateError("this server is not owned", "take_ownership first")
        if current.manager_uuid != manager_uuid:
            raise ForbiddenError(
                f"this server is owned by manager {current.manager_uuid}, not {manager_uuid}"
            )
        a.store.clear_ownership()
        for path in (a.paths.client_certificate, a.paths.manager_ca):
            path.unlink(missing_ok=True)
        a.trust.update(None)
        a.record_event(
            make_event(
                "server.released", "server", a.server_uuid, f"manager {manager_uuid} released the server"
            )
        )
        return {"server_uuid": a.server_uuid, "owned": False}

    @verb
    def update_agent_password(self, caller: Caller, password: str) -> bool:
        """Set a new agent password (stored as a crypt(3) SHA-512 hash). Returns true."""
        check_new_password(password)
        self.agent.store.set_meta("password_hash", hash_password(password))
        self.agent.record_event(
            make_event("agent.password_changed", "server", self.agent.server_uuid, "agent password changed")
        )
        return True

    @verb
    def set_statistics_interval(self, caller: Caller, seconds: int) -> int:
        """Sample statistics every ``seconds`` (1 to 3600; default 10). Returns the interval."""
        if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
            raise SpecError(f"seconds must be from {MIN_INTERVAL} to {MAX_INTERVAL}, got {seconds}")
        self.agent.store.set_meta("statistics_interval", str(seconds))
        self.agent.sampling_wakeup.set()
        return seconds

    # -- VMs --------------------------------------------------------------------------------------
    @verb
    def list_vms(self, caller: Caller) -> list[dict[str, Any]]:
        """All VMs: the ones this agent manages and any other libvirt domain on the host.

        Each: ``uuid``, ``name``, ``state`` (running, blocked, paused, shutting_down, shutoff,
        crashed, pmsuspended, nostate, or ``missing`` when a managed VM's domain is gone),
        ``managed`` (bool), ``vcpus``, ``memory_mib``."""
        a = self.agent
        domains = {d.uuid: d for d in a.hv.list_domains()}
        out = []
        for rec in a.store.list_vms():
            d = domains.pop(rec.uuid, None)
            out.append(
                {
                    "uuid": rec.uuid,
                    "name": rec.name,
                    "state": d.state if d else "missing",
                    "managed": True,
                    "vcpus": rec.spec.get("vcpus", 0),
                    "memory_mib": rec.spec.get("memory_mib", 0),
                }
            )
        for d in domains.values():
            out.append(
                {
                    "uuid": d.uuid,
                    "name": d.name,
                    "state": d.state,
                    "managed": False,
                    "vcpus": d.vcpus,
                    "memory_mib": d.max_memory_kib // 1024,
                }
            )
        return sorted(out, key=lambda v: v["name"])

    @verb
    def create_vm(self, caller: Caller, spec: dict) -> dict[str, Any]:
        """Define a VM (it stays off). ``spec`` is a struct, see "VM spec" below. Missing
        ``uuid`` and NIC ``mac`` values are generated. Returns what ``get_vm_info`` returns."""
        a = self.agent
        vm = parse_vm_spec(spec)
        if a.store.get_vm(vm.uuid) is not None:
            raise StateError(
                f"a VM with uuid {vm.uuid} exists already", "use another uuid or delete_vm first"
            )
        same_name = a.store.find_vm_by_name(vm.name)
        if same_name is not None:
            raise StateError(
                f"a VM named {vm.name!r} exists already ({same_name.uuid})", "choose another name"
            )
        xml = build_domain_xml(vm, a.hv.flavor(a.config.qemu_accel))
        a.hv.define(xml)
        a.store.put_vm(vm.uuid, vm.name, vm.to_struct(), "shutoff")
        return self.get_vm_info(caller, vm.uuid)

    def _managed(self, vm_uuid: str) -> str:
        vm_uuid = _check_uuid(vm_uuid, "vm_uuid")
        if self.agent.store.get_vm(vm_uuid) is None:
            raise NotFoundError(
                f"no VM {vm_uuid} is managed by this agent", "list_vms shows the VMs and their uuids"
            )
        return vm_uuid

    @verb
    def start_vm(self, caller: Caller, vm_uuid: str) -> dict[str, Any]:
        """Start a stopped VM. Returns ``uuid`` and ``state``; a ``vm.started`` event follows."""
        a = self.agent
        vm_uuid = self._managed(vm_uuid)
        try:
            a.hv.start(vm_uuid)
        except VmStateError as err:
            raise StateError(f"VM {vm_uuid} is already running", "stop_vm it first to restart it") from err
        # The vm.started lifecycle event records the new state in the agent DB.
        return {"uuid": vm_uuid, "state": "running"}

    @verb
    def stop_vm(self, caller: Caller, vm_uuid: str, force: bool = False) -> dict[str, Any]:
        """Stop a running VM: cleanly (ACPI power button / Xen shutdown request, the guest decides
        when) or with ``force`` true at once (power cut). Returns ``uuid``, ``state`` and
        ``action`` (``shutdown`` or ``destroy``); a ``vm.stopped`` event follows when it is off."""
        a = self.agent
        vm_uuid = self._managed(vm_uuid)
        if a.hv.info(vm_uuid).state not in ACTIVE_STATES:
            raise StateError(f"VM {vm_uuid} is not running", "start_vm it first")
        if force:
            a.hv.destroy(vm_uuid)
        else:
            a.hv.shutdown(vm_uuid)
        state = a.hv.info(vm_uuid).state
        a.store.set_vm_state(vm_uuid, state)
        return {"uuid": vm_uuid, "state": state, "action": "destroy" if force else "shutdown"}

    @verb
    def delete_vm(self, caller: Caller, vm_uuid: str) -> bool:
        """Remove a stopped VM's definition (its disk files are left alone). Returns true."""
        a = self.agent
        vm_uuid = self._managed(vm_uuid)
        if a.hv.exists(vm_uuid):
            if a.hv.info(vm_uuid).state in ACTIVE_STATES:
                raise StateError(f"VM {vm_uuid} is running", "stop_vm it before deleting it")
            a.hv.undefine(vm_uuid)
        a.store.delete_vm(vm_uuid)
        return True

    @verb
    def get_vm_info(self, caller: Caller, vm_uuid: str) -> dict[str, Any]:
        """One VM: ``uuid``, ``name``, ``managed``, ``state``, ``spec`` (the stored VM spec, {}
        for unmanaged domains), ``domain_id`` (-1 when off), ``vcpus``, ``memory_bytes``,
        ``cpu_time_ns``."""
        a = self.agent
        vm_uuid = _check_uuid(vm_uuid, "vm_uuid")
        rec = a.store.get_vm(vm_uuid)
        exists = a.hv.exists(vm_uuid)
        if rec is None and not exists:
            raise NotFoundError(f"no VM {vm_uuid} on this server", "list_vms shows the VMs and their uuids")
        info = a.hv.info(vm_uuid) if exists else None
        return {
            "uuid": vm_uuid,
            "name": rec.name if rec else (info.name if info else ""),
            "managed": rec is not None,
            "state": info.state if info else "missing",
            "spec": rec.spec if rec else {},
            "domain_id": info.domain_id if info else -1,
            "vcpus": info.vcpus if info else 0,
            "memory_bytes": info.memory_kib * 1024 if info else 0,
            "cpu_time_ns": info.cpu_time_ns if info else 0,
        }

    @verb
    def get_statistics(self, caller: Caller) -> dict[str, Any]:
        """The latest statistics sample of the server and its running VMs (taken now if none
        was taken yet). Returns ``interval`` and ``samples``: structs ``object_type`` (server or
        vm), ``object_id`` (uuid), ``metric``, ``time``, ``value`` (see "Metrics")."""
        a = self.agent
        samples = a.sampler.last or a.sampler.sample()
        return {"interval": a.statistics_interval(), "samples": samples}
