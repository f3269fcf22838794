"""VMs on their servers: defining, starting, stopping and deleting them through the owning agent,
and following the states the agents report.

The manager's row is what it believes; the agent is the truth. Jobs call the agent first and
write the row in the same transaction, so a refused call leaves the row as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from appliance.manager import jobs
from appliance.manager.problems import Conflict, NotFound, Unavailable
from appliance.manager.schema import servers, vms
from appliance.manager.servers import owner_client
from appliance.manager.timeutil import utcnow

# agent state -> manager state
AGENT_STATES = {
    "running": "running",
    "blocked": "running",
    "paused": "paused",
    "pmsuspended": "paused",
    "shutoff": "stopped",
    "shutdown": "stopped",
    "crashed": "error",
    "missing": "error",
}
EVENT_STATES = {
    "vm.started": "running",
    "vm.stopped": "stopped",
    "vm.crashed": "error",
    "vm.missing": "error",
}
SPEC_FIELDS = ("name", "vcpus", "memory_mib", "server_id", "boot", "description", "ha")


def agent_spec(vm: Any, driver: str) -> dict[str, Any]:
    """The agent's VM spec (docs/agent-api.md) for a manager VM row."""
    spec: dict[str, Any] = {
        "uuid": vm["id"],
        "name": vm["name"],
        "vcpus": vm["vcpus"],
        "memory_mib": vm["memory_mib"],
        "virt_type": vm["domain_type"] if driver == "xen" else "hvm",
        "description": vm["description"] or "",
        "ha": bool(vm["ha"]),
        "nics": [
            {"bridge": nic["network"], **({"mac": nic["mac"]} if nic.get("mac") else {})}
            for nic in vm["nics"] or []
        ],
        "disks": [
            {
                "path": f"/OVS/Repositories/{disk.get('repository_id') or vm['repository_id']}/VirtualDisks/"
                f"{vm['id']}-{disk['name']}.img",
                "format": "raw",
            }
            for disk in vm["disks"] or []
            if disk.get("repository_id") or vm["repository_id"]
        ],
    }
    if vm["boot"]:
        boot = vm["boot"]
        spec["boot"] = {
            "kernel": boot["kernel"],
            "initrd": boot.get("initrd") or "",
            "cmdline": boot.get("cmdline", ""),
        }
    return spec


def _server(conn: Connection, server_id: str) -> Any:
    row = conn.execute(select(servers).where(servers.c.id == server_id)).mappings().first()
    if row is None:
        raise NotFound(f"server {server_id} does not exist")
    if row["state"] != "owned":
        raise Unavailable(
            f"server {row['name']} is {row['state']}", "wait until it is reachable and owned again"
        )
    return row


def hypervisor_driver(hardware: Any) -> str:
    """The libvirt driver a server's agent reported, lower case (libvirt says "Xen", "QEMU")."""
    return str(((hardware or {}).get("hypervisor") or {}).get("driver", "")).lower()


def define_on(ctx: jobs.JobContext, conn: Connection, vm: Any, server_id: str) -> None:
    server = _server(conn, server_id)
    owner_client(ctx.services, server).call("create_vm", agent_spec(vm, hypervisor_driver(server["hardware"])))


def undefine_on(ctx: jobs.JobContext, conn: Connection, vm_id: str, server_id: str) -> None:
    server = _server(conn, server_id)
    try:
        owner_client(ctx.services, server).call("delete_vm", vm_id)
    except NotFound:
        pass  # already gone from the server


def on_created(ctx: jobs.JobContext, conn: Connection, vm_id: str) -> None:
    vm = conn.execute(select(vms).where(vms.c.id == vm_id)).mappings().one()
    if vm["server_id"]:
        define_on(ctx, conn, vm, vm["server_id"])


def before_update(ctx: jobs.JobContext, conn: Connection, vm_id: str, values: dict[str, Any]) -> None:
    """Redefine the VM on its server when what the server knows changes (it must be stopped)."""
    old = conn.execute(select(vms).where(vms.c.id == vm_id)).mappings().one()
    if not old["server_id"] and not values.get("server_id"):
        return
    if not any(k in values and values[k] != old[k] for k in SPEC_FIELDS):
        return
    if old["state"] not in ("stopped", "error"):
        raise Conflict(f"the VM is {old['state']}", "stop it before changing its definition or server")
    if old["server_id"]:
        undefine_on(ctx, conn, vm_id, old["server_id"])
    new = {**old, **values}
    if new["server_id"]:
        define_on(ctx, conn, new, new["server_id"])


def before_delete(ctx: jobs.JobContext, conn: Connection, vm_id: str) -> None:
    server_id = conn.execute(select(vms.c.server_id).where(vms.c.id == vm_id)).scalar()
    if server_id:
        undefine_on(ctx, conn, vm_id, server_id)


def _least_loaded_server(conn: Connection, pool_id: str | None) -> str:
    load = (
        select(servers.c.id)
        .outerjoin(vms, (vms.c.server_id == servers.c.id) & (vms.c.state == "running"))
        .where(servers.c.state == "owned")
        .group_by(servers.c.id)
        .order_by(func.count(vms.c.id), servers.c.name)
        .limit(1)
    )
    if pool_id:
        load = load.where(servers.c.pool_id == pool_id)
    found = conn.execute(load).scalar()
    if found is None:
        raise Conflict("no owned server can run the VM", "discover a server (POST /api/v1/servers) first")
    return str(found)


@jobs.handler("vm.start")
def start(ctx: jobs.JobContext) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        vm = conn.execute(select(vms).where(vms.c.id == ctx.object_id).with_for_update()).mappings().first()
        if vm is None:
            raise NotFound(f"no VM with id {ctx.object_id!r}")
        if vm["state"] == "running":
            raise Conflict(f"VM {vm['name']} is already running", "nothing to do")
        target = ctx.request.get("server_id") or vm["server_id"] or _least_loaded_server(conn, vm["pool_id"])
        if target != vm["server_id"]:
            if vm["server_id"]:
                undefine_on(ctx, conn, vm["id"], vm["server_id"])
            define_on(ctx, conn, vm, target)
            conn.execute(update(vms).where(vms.c.id == vm["id"]).values(server_id=target))
        server = _server(conn, target)
        client = owner_client(ctx.services, server)
        try:
            client.call("start_vm", vm["id"])
        except NotFound:  # the server lost its definition: define it again, then start
            define_on(ctx, conn, vm, target)
            client.call("start_vm", vm["id"])
        conn.execute(update(vms).where(vms.c.id == vm["id"]).values(state="running", updated_at=utcnow()))
        ctx.event(conn, "vm.start_requested", f"VM {vm['name']} started on server {server['name']}")
    return {"id": vm["id"], "server_id": target}


@jobs.handler("vm.stop")
def stop(ctx: jobs.JobContext) -> dict[str, Any]:
    force = bool(ctx.request.get("force"))
    with ctx.engine.begin() as conn:
        vm = conn.execute(select(vms).where(vms.c.id == ctx.object_id).with_for_update()).mappings().first()
        if vm is None:
            raise NotFound(f"no VM with id {ctx.object_id!r}")
        if not vm["server_id"] or vm["state"] == "stopped":
            raise Conflict(f"VM {vm['name']} is not running", "nothing to do")
        server = _server(conn, vm["server_id"])
        owner_client(ctx.services, server).call("stop_vm", vm["id"], force)
        conn.execute(update(vms).where(vms.c.id == vm["id"]).values(state="stopped", updated_at=utcnow()))
        ctx.event(conn, "vm.stop_requested", f"VM {vm['name']} {'killed' if force else 'shut down'}")
    return {"id": vm["id"], "forced": force}


def follow_agent_events(conn: Connection, server_id: str, batch: Sequence[Any]) -> int:
    """Apply VM state changes an agent reported (only for VMs the manager places on that server)."""
    changed = 0
    for event in batch:
        state = EVENT_STATES.get(event["type"])
        if state and event["object_type"] == "vm":
            changed += conn.execute(
                update(vms)
                .where(vms.c.id == event["object_id"], vms.c.server_id == server_id, vms.c.state != state)
                .values(state=state, updated_at=utcnow())
            ).rowcount
    return changed


def apply_listing(conn: Connection, server_id: str, listing: Sequence[Any]) -> int:
    """Make the rows of the VMs placed on a server match what its agent lists."""
    changed = 0
    for item in listing:
        state = AGENT_STATES.get(str(item.get("state")), "error")
        changed += conn.execute(
            update(vms)
            .where(vms.c.id == item["uuid"], vms.c.server_id == server_id, vms.c.state != state)
            .values(state=state, updated_at=utcnow())
        ).rowcount
    return changed


def insert_from_agent(conn: Connection, server_id: str, item: Any, spec: Any) -> None:
    """A VM the agent manages but the manager does not know (e.g. after its database was rebuilt)."""
    from sqlalchemy import insert

    boot = spec.get("boot") if isinstance(spec.get("boot"), dict) else None
    name = str(item["name"])
    if conn.execute(select(vms.c.id).where(vms.c.name == name)).scalar() is not None:
        name = f"{name}-{str(item['uuid'])[:8]}"
    now = utcnow()
    conn.execute(
        insert(vms).values(
            id=item["uuid"],
            name=name,
            description=str(spec.get("description", ""))[:255],
            server_id=server_id,
            pool_id=None,
            repository_id=None,
            domain_type=spec.get("virt_type") or "hvm",
            vcpus=int(item.get("vcpus") or spec.get("vcpus") or 1),
            memory_mib=int(item.get("memory_mib") or 512),
            state=AGENT_STATES.get(str(item.get("state")), "error"),
            ha=bool(spec.get("ha", False)),
            disks=[],
            nics=[
                {"network": n.get("bridge") or n.get("network") or "default", "mac": n.get("mac")}
                for n in spec.get("nics", [])
            ],
            boot={
                "kernel": boot["kernel"],
                "initrd": boot.get("initrd") or None,
                "cmdline": boot.get("cmdline", ""),
            }
            if boot and boot.get("kernel")
            else None,
            created_at=now,
            updated_at=now,
        )
    )
