"""The agent process: wires the state DB, hypervisor, XML-RPC server, statistics sampler and
pusher together; reconciles VM state with libvirt at start (re-attach, never restart guests)."""

from __future__ import annotations

import logging
import socket
import threading

from appliance.server import tls
from appliance.server.config import AgentConfig
from appliance.server.dispatch import Dispatcher, collect_verbs
from appliance.server.events import lifecycle_to_event, make_event, state_change_event
from appliance.server.hypervisor import ACTIVE_STATES, HypervisorError, LibvirtHypervisor, LifecycleEvent
from appliance.server.outbox import Outbox
from appliance.server.passwords import PasswordVerifier
from appliance.server.pusher import Pusher
from appliance.server.rpcserver import AgentRPCServer, RPCApp, TrustState
from appliance.server.stats import StatsSampler
from appliance.server.store import Store
from appliance.server.verbs import AgentVerbs

log = logging.getLogger(__name__)

DEFAULT_STATISTICS_INTERVAL = 10
HYPERVISOR_RETRY_MAX = 30.0  # seconds between attempts while libvirt does not answer
_STATE_AFTER = {
    "started": "running",
    "resumed": "running",
    "stopped": "shutoff",
    "suspended": "paused",
    "crashed": "crashed",
    "pmsuspended": "pmsuspended",
}


def open_state(config: AgentConfig) -> tuple[Store, str]:
    """Create or open the state directory: DB, server UUID, TLS key and certificate."""
    paths = config.paths
    paths.ensure()
    store = Store(paths.database)
    server_uuid = store.ensure_server_uuid()
    names = [socket.gethostname(), "localhost", "127.0.0.1", "::1"]
    if config.listen_host not in ("0.0.0.0", "::", ""):
        names.append(config.listen_host)
    if tls.ensure_self_signed(paths.key, paths.certificate, server_uuid, sorted(set(names))):
        log.info("made the agent's self-signed TLS certificate %s", paths.certificate)
    return store, server_uuid


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.paths = config.paths
        self.store, self.server_uuid = open_state(config)
        self.outbox = Outbox(self.store, config.outbox, self.server_uuid)
        self.trust = TrustState(self.paths, self.store.get_ownership())
        self.sampling_wakeup = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.hv = LibvirtHypervisor(config.hypervisor_uri, on_event=self._on_lifecycle)
        self.sampler = StatsSampler(self.hv, self.server_uuid)
        self.pusher = Pusher(self.outbox, config.push_retry_max)
        self.dispatcher = Dispatcher(collect_verbs(AgentVerbs(self)))
        self.rpc: AgentRPCServer | None = None

    # -- state ------------------------------------------------------------------------------------
    def statistics_interval(self) -> int:
        return int(self.store.get_meta("statistics_interval") or DEFAULT_STATISTICS_INTERVAL)

    def record_event(self, event: dict, vm_state: tuple[str, str] | None = None) -> None:
        self.outbox.add_event(event, vm_state)

    def _on_lifecycle(self, ev: LifecycleEvent) -> None:
        event = lifecycle_to_event(ev)
        state = _STATE_AFTER.get(ev.kind)
        managed = self.store.get_vm(ev.vm_uuid) is not None
        vm_state = (ev.vm_uuid, state) if managed and state else None
        if event is not None:
            self.record_event(event, vm_state)
        elif vm_state is not None:
            self.store.set_vm_state(*vm_state)

    def reconcile(self) -> None:
        """Compare each managed VM's last known state with libvirt's and report what changed while
        the agent was not running. Running guests are left as they are."""
        for rec in self.store.list_vms():
            now = self.hv.info(rec.uuid).state if self.hv.exists(rec.uuid) else "missing"
            if (rec.last_state in ACTIVE_STATES) != (now in ACTIVE_STATES):
                self.record_event(
                    state_change_event(rec.uuid, rec.name, rec.last_state, now), (rec.uuid, now)
                )
            elif now != rec.last_state:
                self.store.set_vm_state(rec.uuid, now)
            if now == "missing":
                self.record_event(
                    make_event(
                        "vm.missing",
                        "vm",
                        rec.uuid,
                        f"VM {rec.name} ({rec.uuid}) is in the agent DB but libvirt has no such domain",
                        "warning",
                    )
                )

    # -- threads ----------------------------------------------------------------------------------
    def _sampling_loop(self) -> None:
        failing = False
        while not self._stop.is_set():
            self.sampling_wakeup.clear()
            try:
                samples = self.sampler.sample()
                if self.store.get_ownership() is not None:
                    self.outbox.add_samples(samples)
                failing = False
            except HypervisorError as err:
                if not failing:  # once per outage, not every interval
                    log.warning("sampling statistics failed: %s", err.message)
                failing = True
            except Exception:
                log.exception("sampling statistics failed")
            self.sampling_wakeup.wait(self.statistics_interval())

    def _await_hypervisor(self) -> None:
        """Until libvirt answers: retry, then reconcile and say so (the agent serves meanwhile)."""
        delay = 2.0
        while not self._stop.wait(delay):
            if self.hv.available():
                self.reconcile()
                self.record_event(make_event("agent.hypervisor_available", "server", self.server_uuid,
                                             f"the hypervisor {self.hv.uri} answers again"))  # fmt: skip
                log.info("the hypervisor %s answers; VM states reconciled", self.hv.uri)
                return
            delay = min(delay * 2, HYPERVISOR_RETRY_MAX)

    def start(self) -> None:
        if self.store.get_meta("password_hash") is None and self.store.get_ownership() is None:
            log.warning(
                "no agent password is set: run `appliance agent set-password --state-dir %s`", self.paths.root
            )
        hypervisor_up = self.hv.available()
        if hypervisor_up:
            self.reconcile()
        self.record_event(
            make_event(
                "agent.started", "server", self.server_uuid, f"agent started (hypervisor {self.hv.uri})"
            )
        )
        if not hypervisor_up:
            self.record_event(make_event(
                "agent.hypervisor_unavailable", "server", self.server_uuid,
                f"the hypervisor {self.hv.uri} does not answer (is libvirtd running?); VM calls fail "
                "until it does, the agent keeps retrying", "error"))  # fmt: skip
        app = RPCApp(
            trust=self.trust,
            dispatcher=self.dispatcher,
            limits=self.config.limits,
            password_hash=lambda: self.store.get_meta("password_hash"),
            verifier=PasswordVerifier(),
        )
        self.rpc = AgentRPCServer(self.config.listen_host, self.config.listen_port, app)
        rpc = self.rpc
        self._threads = [
            threading.Thread(target=lambda: rpc.serve_forever(0.5), name="agent-rpc", daemon=True),
            threading.Thread(target=self._sampling_loop, name="agent-stats", daemon=True),
        ]
        if not hypervisor_up:
            self._threads.append(
                threading.Thread(target=self._await_hypervisor, name="agent-hv", daemon=True)
            )
        for t in self._threads:
            t.start()
        self.pusher.start()

    @property
    def port(self) -> int:
        assert self.rpc is not None
        return self.rpc.server_port

    def stop(self) -> None:
        """Stop serving and pushing; guests keep running and queued items stay in the outbox."""
        self._stop.set()
        self.sampling_wakeup.set()
        if self.rpc is not None:
            self.rpc.shutdown()
            self.rpc.server_close()
        self.pusher.stop()
        for t in self._threads:
            t.join(timeout=10)
        self.hv.close()
        self.store.close()
