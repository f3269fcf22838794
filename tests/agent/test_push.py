"""Events and statistics pushed to a contract-enforcing HTTPS receiver: queued while it is down,
replayed in order when it returns, bounded, and surviving an agent restart with a guest running."""

from __future__ import annotations

import time
import uuid

from appliance.server.config import OutboxLimits
from appliance.server.store import EVENT

from .conftest import AgentFactory, ManagerIdentity, RunningAgent, vm_spec
from .receiver import IngestReceiver


def _wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _own(ra: RunningAgent, manager: ManagerIdentity, recv: IngestReceiver) -> None:
    ra.proxy().take_ownership(
        manager.uuid, manager.ca_pem, recv.event_url, recv.statistics_url, manager.client_cert_for(ra.agent)
    )


def _server_events(recv: IngestReceiver, server_uuid: str) -> list[dict]:
    with recv.lock:
        return [
            recv.received.events[(server_uuid, i)]
            for i in recv.received.event_order
            if (server_uuid, i) in recv.received.events
        ]


def _vm_lifecycle(recv: IngestReceiver, server_uuid: str, vm: str) -> list[str]:
    return [
        e["type"]
        for e in _server_events(recv, server_uuid)
        if e["object_id"] == vm and e["type"] in ("vm.started", "vm.stopped")
    ]


def test_events_and_statistics_reach_the_manager(
    start_agent: AgentFactory, manager: ManagerIdentity, receiver: IngestReceiver
) -> None:
    ra = start_agent()
    _own(ra, manager, receiver)
    owner = ra.proxy(identity=manager)
    owner.set_statistics_interval(1)
    vm = owner.create_vm(vm_spec(f"push-{uuid.uuid4().hex[:8]}"))["uuid"]
    owner.start_vm(vm)
    sid = ra.agent.server_uuid
    _wait_for(
        lambda: any(e["object_id"] == vm and e["type"] == "vm.started" for e in _server_events(receiver, sid))
    )
    types = [e["type"] for e in _server_events(receiver, sid)]
    assert types[:2] == ["agent.started", "server.owned"]
    _wait_for(lambda: any(k[0] == "vm" and k[1] == vm for k in receiver.received.samples))
    metrics = {k[2] for k in receiver.received.samples if k[1] == sid}
    assert metrics == {
        "cpu_percent",
        "memory_used_bytes",
        "memory_total_bytes",
        "disk_read_bytes",
        "disk_write_bytes",
        "net_rx_bytes",
        "net_tx_bytes",
    }
    vm_metrics = {k[2] for k in receiver.received.samples if k[1] == vm}
    assert vm_metrics == {
        "cpu_percent",
        "memory_bytes",
        "vcpus",
        "disk_read_bytes",
        "disk_write_bytes",
        "net_rx_bytes",
        "net_tx_bytes",
    }
    assert not receiver.received.rejected
    owner.stop_vm(vm, True)


def test_queue_while_manager_down_then_replay_in_order(
    start_agent: AgentFactory, manager: ManagerIdentity, receiver: IngestReceiver
) -> None:
    ra = start_agent()
    _own(ra, manager, receiver)
    sid = ra.agent.server_uuid
    _wait_for(lambda: len(_server_events(receiver, sid)) >= 2)
    receiver.stop()  # the manager goes away; the agent keeps serving
    owner = ra.proxy(identity=manager)
    vm = owner.create_vm(vm_spec(f"queue-{uuid.uuid4().hex[:8]}"))["uuid"]
    for _ in range(3):
        owner.start_vm(vm)
        owner.stop_vm(vm, True)
    _wait_for(lambda: ra.agent.outbox.pending()["events"] >= 6)
    queued = [i.body["id"] for i in ra.agent.store.peek(EVENT, 1000)]
    receiver.start()  # same port
    _wait_for(lambda: ra.agent.outbox.pending()["events"] == 0)
    order = [e["id"] for e in _server_events(receiver, sid)]
    assert order[-len(queued) :] == queued  # replayed in the order they happened
    assert _vm_lifecycle(receiver, sid, vm) == ["vm.started", "vm.stopped"] * 3
    assert receiver.received.duplicates == 0 and not receiver.received.rejected


def test_restart_with_guest_running_and_events_queued(
    start_agent: AgentFactory, manager: ManagerIdentity, receiver: IngestReceiver
) -> None:
    ra = start_agent()
    _own(ra, manager, receiver)
    sid = ra.agent.server_uuid
    owner = ra.proxy(identity=manager)
    vm = owner.create_vm(vm_spec(f"restart-{uuid.uuid4().hex[:8]}"))["uuid"]
    _wait_for(lambda: len(_server_events(receiver, sid)) >= 2)
    receiver.stop()
    owner.start_vm(vm)
    domain_id = owner.get_vm_info(vm)["domain_id"]
    _wait_for(lambda: ra.agent.outbox.pending()["events"] >= 1)
    queued = [i.body["id"] for i in ra.agent.store.peek(EVENT, 1000)]
    ra.agent.stop()

    ra2 = start_agent(state_dir=ra.state_dir)
    owner2 = ra2.proxy(identity=manager)
    info = owner2.get_vm_info(vm)
    assert info["state"] == "running" and info["domain_id"] == domain_id  # re-attached, not restarted
    receiver.start()
    _wait_for(lambda: ra2.agent.outbox.pending()["events"] == 0)
    ids = [e["id"] for e in _server_events(receiver, sid)]
    assert set(queued) <= set(ids)  # nothing lost
    assert len(ids) == len(set(ids)) and receiver.received.duplicates == 0  # nothing duplicated
    types = [e["type"] for e in _server_events(receiver, sid)]
    assert types.count("agent.started") == 2
    assert _vm_lifecycle(receiver, sid, vm) == ["vm.started"]
    owner2.stop_vm(vm, True)
    _wait_for(lambda: _vm_lifecycle(receiver, sid, vm) == ["vm.started", "vm.stopped"])


def test_state_change_while_agent_down_is_reported(
    start_agent: AgentFactory, manager: ManagerIdentity, receiver: IngestReceiver, test_driver
) -> None:
    ra = start_agent()
    _own(ra, manager, receiver)
    sid = ra.agent.server_uuid
    owner = ra.proxy(identity=manager)
    vm = owner.create_vm(vm_spec(f"down-{uuid.uuid4().hex[:8]}"))["uuid"]
    owner.start_vm(vm)
    _wait_for(lambda: any(e["object_id"] == vm for e in _server_events(receiver, sid)))
    ra.agent.stop()
    test_driver.lookupByUUIDString(vm).destroy()  # the guest dies while no agent watches
    ra2 = start_agent(state_dir=ra.state_dir)
    _wait_for(lambda: _vm_lifecycle(receiver, sid, vm) == ["vm.started", "vm.stopped"])
    last = [e for e in _server_events(receiver, sid) if e["object_id"] == vm and e["type"] == "vm.stopped"][
        -1
    ]
    assert "while the agent was not running" in last["message"] and last["severity"] == "warning"
    assert ra2.proxy(identity=manager).get_vm_info(vm)["state"] == "shutoff"


def test_outbox_is_bounded_and_says_so(
    start_agent: AgentFactory, manager: ManagerIdentity, receiver: IngestReceiver
) -> None:
    ra = start_agent(outbox=OutboxLimits(max_events=6))
    _own(ra, manager, receiver)
    sid = ra.agent.server_uuid
    _wait_for(lambda: len(_server_events(receiver, sid)) >= 2)
    receiver.stop()
    owner = ra.proxy(identity=manager)
    vm = owner.create_vm(vm_spec(f"full-{uuid.uuid4().hex[:8]}"))["uuid"]
    for _ in range(10):
        owner.start_vm(vm)
        owner.stop_vm(vm, True)
    _wait_for(lambda: any(i.body["type"] == "agent.outbox_overflow" for i in ra.agent.store.peek(EVENT, 100)))
    assert ra.agent.outbox.pending()["events"] <= 6
    receiver.start()
    _wait_for(lambda: ra.agent.outbox.pending()["events"] == 0)
    overflow = [e for e in _server_events(receiver, sid) if e["type"] == "agent.outbox_overflow"]
    assert len(overflow) == 1 and overflow[0]["severity"] == "warning"
    # The newest events survived: the last one is the final stop.
    assert _vm_lifecycle(receiver, sid, vm)[-1] == "vm.stopped"
