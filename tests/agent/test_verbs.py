"""Verb logic through real XML-RPC over TLS against libvirt's test driver."""

from __future__ import annotations

import time
import uuid
import xmlrpc.client

import pytest

from appliance.server import rpcproto
from appliance.server.store import EVENT

from .conftest import AgentFactory, vm_spec


def _fault(call, *args) -> xmlrpc.client.Fault:  # type: ignore[no-untyped-def]
    with pytest.raises(xmlrpc.client.Fault) as info:
        call(*args)
    return info.value


def _queued_event_types(agent) -> list[str]:  # type: ignore[no-untyped-def]
    return [i.body["type"] for i in agent.store.peek(EVENT, 10_000)]


def _wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_discover_verbs(start_agent: AgentFactory) -> None:
    ra = start_agent()
    rpc = ra.proxy()
    server = rpc.discover_server()
    assert server["server_uuid"] == ra.agent.server_uuid
    assert server["owned"] is False and server["manager_uuid"] == ""
    assert server["hypervisor"]["uri"] == "test:///default"
    assert server["certificate_fingerprint"].count(":") == 31
    hw = rpc.discover_hardware()
    assert hw["cpus"] > 0 and hw["memory_bytes"] > 0 and set(hw["dmi"]) >= {"sys_vendor", "product_uuid"}
    net = rpc.discover_network()
    assert any(
        i["name"] == "lo" and any(a["address"] == "127.0.0.1" for a in i["addresses"])
        for i in net["interfaces"]
    )
    storage = rpc.discover_storage()
    assert isinstance(storage["block_devices"], list)
    assert any(fs["mountpoint"] == "/" for fs in storage["filesystems"])
    methods = rpc.system.listMethods()
    assert {"create_vm", "start_vm", "stop_vm", "take_ownership", "get_statistics"} <= set(methods)


def test_vm_lifecycle_and_events(start_agent: AgentFactory) -> None:
    ra = start_agent()
    rpc = ra.proxy()
    name = f"life-{uuid.uuid4().hex[:8]}"
    created = rpc.create_vm(vm_spec(name, nics=[{"network": "default"}]))
    vm = created["uuid"]
    assert created["state"] == "shutoff" and created["managed"] is True
    assert created["spec"]["nics"][0]["mac"].startswith("02:")
    listed = {v["uuid"]: v for v in rpc.list_vms()}
    assert listed[vm]["managed"] is True and listed[vm]["state"] == "shutoff"
    assert any(not v["managed"] for v in listed.values())  # the test driver's own domain

    assert rpc.start_vm(vm)["state"] == "running"
    assert _fault(rpc.start_vm, vm).faultCode == rpcproto.INVALID_STATE
    assert _fault(rpc.delete_vm, vm).faultCode == rpcproto.INVALID_STATE
    info = rpc.get_vm_info(vm)
    assert info["domain_id"] > 0 and info["vcpus"] == 1 and info["memory_bytes"] == 64 * 1024 * 1024
    stats = rpc.get_statistics()
    assert stats["interval"] == 10 and any(s["object_type"] == "server" for s in stats["samples"])

    assert rpc.stop_vm(vm) == {"uuid": vm, "state": "shutoff", "action": "shutdown"}  # test driver: at once
    assert _fault(rpc.stop_vm, vm).faultCode == rpcproto.INVALID_STATE
    rpc.start_vm(vm)
    assert rpc.stop_vm(vm, True)["action"] == "destroy"
    _wait_for(lambda: _queued_event_types(ra.agent).count("vm.stopped") >= 2)
    types = _queued_event_types(ra.agent)
    assert types.count("vm.started") == 2
    vm_events = [i.body for i in ra.agent.store.peek(EVENT, 10_000) if i.body["object_id"] == vm]
    assert [e["type"] for e in vm_events if e["type"] in ("vm.started", "vm.stopped")] == [
        "vm.started",
        "vm.stopped",
        "vm.started",
        "vm.stopped",
    ]
    assert "forced off" in vm_events[-1]["message"]

    assert rpc.delete_vm(vm) is True
    assert _fault(rpc.get_vm_info, vm).faultCode == rpcproto.NOT_FOUND
    assert vm not in {v["uuid"] for v in rpc.list_vms()}


def test_faults_for_wrong_input(start_agent: AgentFactory) -> None:
    ra = start_agent()
    rpc = ra.proxy()
    unknown = str(uuid.uuid4())
    cases = [
        (rpc.start_vm, (unknown,), rpcproto.NOT_FOUND, "no VM"),
        (rpc.start_vm, (42,), rpcproto.INVALID_PARAMS, "vm_uuid must be a string"),
        (rpc.start_vm, ("not-a-uuid",), rpcproto.INVALID_PARAMS, "is not a UUID"),
        (rpc.start_vm, (), rpcproto.INVALID_PARAMS, "takes 1 parameter"),
        (rpc.stop_vm, (unknown, "yes"), rpcproto.INVALID_PARAMS, "force must be a boolean"),
        (rpc.set_statistics_interval, (0,), rpcproto.INVALID_PARAMS, "from 1 to 3600"),
        (rpc.set_statistics_interval, (True,), rpcproto.INVALID_PARAMS, "must be an integer"),
        (
            rpc.create_vm,
            ({"name": "x", "boot": {"kernel": "/k"}},),
            rpcproto.INVALID_PARAMS,
            "memory_mib is required",
        ),
        (rpc.create_vm, ({"name": "x", "memory_mib": 64},), rpcproto.INVALID_PARAMS, "no disk to boot from"),
        (rpc.create_vm, (vm_spec("x", vcpus="2"),), rpcproto.INVALID_PARAMS, "vcpus must be an integer"),
        (rpc.create_vm, (vm_spec("bad name!"),), rpcproto.INVALID_PARAMS, "name 'bad name!' is not valid"),
        (rpc.create_vm, (vm_spec("x", colour="red"),), rpcproto.INVALID_PARAMS, "unknown field(s): colour"),
        (rpc.create_vm, (vm_spec("x", virt_type="pv"),), rpcproto.INVALID_PARAMS, "needs a Xen hypervisor"),
        (
            rpc.create_vm,
            (vm_spec("x", nics=[{"mac": "01:00:00:00:00:01", "network": "default"}]),),
            rpcproto.INVALID_PARAMS,
            "not a unicast MAC",
        ),
        (rpc.create_vm, ([1, 2],), rpcproto.INVALID_PARAMS, "spec must be a struct"),
        (rpc.no_such_verb, (), rpcproto.METHOD_NOT_FOUND, "unknown method"),
        (rpc.release_ownership, (unknown,), rpcproto.INVALID_STATE, "not owned"),
        (
            rpc.take_ownership,
            (unknown, "junk", "https://m/e", "https://m/s"),
            rpcproto.CONFIG_ERROR,
            "not a PEM",
        ),
    ]
    for call, args, code, text in cases:
        fault = _fault(call, *args)
        assert fault.faultCode == code, (args, fault)
        assert text in fault.faultString, (args, fault)
    # Nothing was created by the failed calls, and the agent still answers.
    assert not ra.agent.store.list_vms()
    assert rpc.set_statistics_interval(2) == 2
    assert rpc.discover_server()["statistics_interval"] == 2


def test_duplicate_vm_is_refused(start_agent: AgentFactory) -> None:
    rpc = start_agent().proxy()
    name = f"dup-{uuid.uuid4().hex[:8]}"
    vm = rpc.create_vm(vm_spec(name))["uuid"]
    assert _fault(rpc.create_vm, vm_spec(name)).faultCode == rpcproto.INVALID_STATE
    assert _fault(rpc.create_vm, vm_spec(name + "b", uuid=vm)).faultCode == rpcproto.INVALID_STATE
    rpc.delete_vm(vm)


def test_update_password(start_agent: AgentFactory) -> None:
    ra = start_agent()
    assert ra.proxy().update_agent_password("n3w-pass") is True
    with pytest.raises(xmlrpc.client.ProtocolError) as info:
        ra.proxy().discover_server()
    assert info.value.errcode == 401
    assert ra.proxy("n3w-pass").discover_server()["server_uuid"] == ra.agent.server_uuid
    assert _fault(ra.proxy("n3w-pass").update_agent_password, "").faultCode == rpcproto.INVALID_PARAMS


def test_agent_serves_while_the_hypervisor_is_down_and_reconnects(
    start_agent: AgentFactory, tmp_path
) -> None:
    """libvirtd failing at boot (e.g. its Xen driver not ready) must not take the agent down with it."""
    node = tmp_path / "node.xml"  # the test driver's host: unreadable until written below
    running = start_agent(hypervisor_uri=f"test://{node}")
    proxy = running.proxy()
    info = proxy.discover_server()
    assert info["hypervisor"]["driver"] == "" and "cannot connect" in info["hypervisor"]["error"]
    assert _fault(proxy.list_vms).faultCode == rpcproto.HYPERVISOR_ERROR
    node.write_text("<node/>")
    deadline = time.monotonic() + 20
    while proxy.discover_server()["hypervisor"]["driver"] != "TEST":
        assert time.monotonic() < deadline, "the agent never reconnected to the hypervisor"
        time.sleep(0.5)
    assert proxy.list_vms() == []

    def queued() -> list[str]:
        return [item.body["type"] for item in running.agent.store.peek(EVENT, 100)]

    assert "agent.hypervisor_unavailable" in queued()
    deadline = time.monotonic() + 40  # the retry backs off up to 30 s
    while "agent.hypervisor_available" not in queued():
        assert time.monotonic() < deadline, queued()
        time.sleep(0.5)
