"""Jobs that talk to server agents: discovery and ownership, release, refresh."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from appliance import pki
from appliance.manager import jobs, trust
from appliance.manager.agentclient import AgentAddress, AgentClient, fetch_certificate
from appliance.manager.problems import Conflict, Forbidden, Invalid, NotFound
from appliance.manager.schema import servers
from appliance.manager.timeutil import utcnow


def owner_client(rt: Any, row: Any) -> AgentClient:
    """A client for an owned server: the manager's client certificate, the agent's pinned fingerprint."""
    if not row["agent_fingerprint"]:
        raise Conflict(f"server {row['name']} has no recorded agent certificate", "discover it again")
    return AgentClient(
        AgentAddress(row["address"], row["agent_port"]),
        row["agent_fingerprint"],
        client_cert=(rt.paths.client_cert, rt.paths.client_key),
        timeout=rt.config.agent_timeout_seconds,
    )


def urls(base: str) -> dict[str, str]:
    return {"event_url": f"{base}/api/v1/events/ingest", "statistics_url": f"{base}/api/v1/statistics/ingest"}


def upsert_owned(conn: Connection, values: dict[str, Any]) -> None:
    """Record a server as owned; a registration of the same address under another id is replaced."""
    conn.execute(
        delete(servers).where(
            servers.c.address == values["address"],
            servers.c.agent_port == values.get("agent_port", 8899),
            servers.c.id != values["id"],
            servers.c.state == "unowned",
        )
    )
    now = utcnow()
    exists = conn.execute(select(servers.c.id).where(servers.c.id == values["id"])).scalar()
    if exists:
        conn.execute(update(servers).where(servers.c.id == values["id"]).values(updated_at=now, **values))
    else:
        name = values.pop("name")
        taken = conn.execute(select(servers.c.id).where(servers.c.name == name)).scalar()
        if taken:
            name = f"{name}-{values['id'][:8]}"
        conn.execute(
            insert(servers).values(name=name, created_at=now, updated_at=now, description="", **values)
        )


@jobs.handler("server.discover")
def discover(ctx: jobs.JobContext) -> dict[str, Any]:
    rt = ctx.services
    password = rt.job_secrets.pop(ctx.request.get("secret_ref", ""), None)
    if password is None:
        raise Conflict(
            "the agent password of this job is gone (the manager restarted)", "submit the discovery again"
        )
    req = ctx.request
    addr = AgentAddress(req["address"], req["agent_port"])
    cert = fetch_certificate(addr, rt.config.agent_timeout_seconds)
    fingerprint = pki.fingerprint(cert)
    with ctx.engine.connect() as conn:
        known = (
            conn.execute(
                select(servers.c.id, servers.c.agent_fingerprint, servers.c.state).where(
                    servers.c.address == addr.host, servers.c.agent_port == addr.port
                )
            )
            .mappings()
            .first()
        )
    if known and known["state"] != "unowned" and known["agent_fingerprint"] not in (None, fingerprint):
        raise Forbidden(
            f"the agent at {addr.host} presents certificate {fingerprint}, but {known['agent_fingerprint']} was recorded",
            "if the server was reinstalled, release it (force) first; otherwise someone may be in the middle",
        )
    ctx.progress(20)
    agent = AgentClient(addr, fingerprint, password=password, timeout=rt.config.agent_timeout_seconds)
    info = agent.call("discover_server")
    server_id = str(info["server_uuid"])
    if info.get("owned") and info.get("manager_uuid") != rt.config.manager_uuid:
        raise Forbidden(
            f"server {info.get('hostname')} is owned by manager {info['manager_uuid']}",
            "release it from that manager first (or run `appliance agent release` on the server)",
        )
    hardware = {**agent.call("discover_hardware"), "hypervisor": info.get("hypervisor", {})}
    ctx.progress(50)
    public_key = cert.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise Invalid("the agent's key is not an EC key", "upgrade the agent")
    authority = rt.authority()
    with ctx.engine.begin() as conn:
        issued = authority.issue_agent(conn, public_key, server_id)
    try:
        agent.call(
            "take_ownership",
            rt.config.manager_uuid,
            authority.ca_pem(),
            *urls(rt.public_url()).values(),
            pki.cert_pem(issued).decode(),
        )
    except Exception:
        with ctx.engine.begin() as conn:
            trust.revoke_server(conn, server_id, "ownership was not taken")
        raise
    ctx.progress(80)
    with ctx.engine.begin() as conn:
        upsert_owned(
            conn,
            {
                "id": server_id,
                "name": req.get("name") or str(info.get("hostname") or addr.host),
                "address": addr.host,
                "agent_port": addr.port,
                "state": "owned",
                "agent_fingerprint": fingerprint,
                "hardware": hardware,
                "pool_id": req.get("pool_id"),
                "last_contact_at": utcnow(),
            },
        )
        ctx.object_id = server_id
        ctx.event(
            conn,
            "server.owned",
            f"server {info.get('hostname')} ({addr.host}) discovered and owned; "
            f"agent certificate {fingerprint}",
        )
        name = conn.execute(select(servers.c.name).where(servers.c.id == server_id)).scalar_one()
    remember(rt, server_id, name, addr.host, addr.port, fingerprint)
    return {
        "id": server_id,
        "href": f"/api/v1/servers/{server_id}",
        "agent_fingerprint": fingerprint,
        "hostname": info.get("hostname"),
    }


@jobs.handler("server.release")
def release(ctx: jobs.JobContext) -> dict[str, Any]:
    rt = ctx.services
    with ctx.engine.connect() as conn:
        row = conn.execute(select(servers).where(servers.c.id == ctx.object_id)).mappings().first()
    if row is None:
        raise NotFound(f"no server with id {ctx.object_id!r}")
    note = ""
    try:
        owner_client(rt, row).call("release_ownership", rt.config.manager_uuid)
    except Exception as err:
        if not ctx.request.get("force"):
            raise
        note = f" (the agent was not told: {err})"
    with ctx.engine.begin() as conn:
        revoked = trust.revoke_server(conn, row["id"], "server released")
        conn.execute(
            update(servers).where(servers.c.id == row["id"]).values(state="unowned", updated_at=utcnow())
        )
        ctx.event(
            conn, "server.released", f"server {row['name']} released; {revoked} certificate(s) revoked{note}"
        )
    roster_write(rt, row["id"], None)
    return {"id": row["id"], "revoked_certificates": revoked}


# --- the roster: owned servers' addresses, kept beside the database so a rebuilt manager finds them ---


def roster_path(rt: Any) -> Any:
    return rt.paths.root / "servers.json"


def roster_write(rt: Any, server_id: str, entry: dict[str, Any] | None) -> None:
    import json
    import os

    path = roster_path(rt)
    data = json.loads(path.read_text()) if path.exists() else {}
    if entry is None:
        data.pop(server_id, None)
    else:
        data[server_id] = entry
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def roster_read(rt: Any) -> dict[str, dict[str, Any]]:
    import json

    path = roster_path(rt)
    return json.loads(path.read_text()) if path.exists() else {}


def remember(rt: Any, server_id: str, name: str, address: str, port: int, fingerprint: str) -> None:
    roster_write(
        rt,
        server_id,
        {"name": name, "address": address, "agent_port": port, "agent_fingerprint": fingerprint},
    )


def needs_new_certificate(conn: Connection, server_id: str) -> bool:
    """No valid certificate on record, or the newest one is two thirds through its life."""
    from appliance.manager.schema import certificates

    row = conn.execute(
        select(certificates.c.not_before, certificates.c.not_after)
        .where(certificates.c.server_id == server_id, certificates.c.revoked_at.is_(None))
        .order_by(certificates.c.not_after.desc())
        .limit(1)
    ).first()
    if row is None:
        return True
    start, end = row
    return utcnow() >= start + (end - start) * 2 / 3


def reissue(ctx: jobs.JobContext, agent: AgentClient, server_id: str) -> str:
    """A fresh client certificate for the agent's key, handed over as its owner (no password needed)."""
    rt = ctx.services
    cert = fetch_certificate(agent.addr, rt.config.agent_timeout_seconds)
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Invalid("the agent's key is not an EC key", "upgrade the agent")
    authority = rt.authority()
    with ctx.engine.begin() as conn:
        issued = authority.issue_agent(conn, key, server_id)
    agent.call(
        "take_ownership",
        rt.config.manager_uuid,
        authority.ca_pem(),
        *urls(rt.public_url()).values(),
        pki.cert_pem(issued).decode(),
    )
    with ctx.engine.begin() as conn:
        conn.execute(
            update(trust.certificates)
            .where(
                trust.certificates.c.server_id == server_id,
                trust.certificates.c.serial != pki.serial_hex(issued),
                trust.certificates.c.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow(), revoke_reason="superseded by a renewed certificate")
        )
    return pki.fingerprint(issued)


def refresh_server(ctx: jobs.JobContext, server_id: str) -> dict[str, Any]:
    """Rebuild the manager's view of one server from its agent: identity, hardware, VMs, certificate."""
    from appliance.manager import vms as vm_ops
    from appliance.manager.schema import vms

    rt = ctx.services
    with ctx.engine.connect() as conn:
        row = conn.execute(select(servers).where(servers.c.id == server_id)).mappings().first()
    if row is None:
        raise NotFound(f"no server with id {server_id!r}")
    agent = owner_client(rt, row)
    info = agent.call("discover_server")
    if info.get("manager_uuid") != rt.config.manager_uuid:
        raise Forbidden(f"server {row['name']} is not owned by this manager any more", "discover it again")
    hardware = {**agent.call("discover_hardware"), "hypervisor": info.get("hypervisor", {})}
    listing = [vm for vm in agent.call("list_vms") if vm.get("managed")]  # not the host's other domains
    renewed = None
    with ctx.engine.connect() as conn:
        due = needs_new_certificate(conn, server_id)
    if due:
        renewed = reissue(ctx, agent, server_id)
    added = 0
    with ctx.engine.begin() as conn:
        conn.execute(
            update(servers)
            .where(servers.c.id == server_id)
            .values(state="owned", hardware=hardware, last_contact_at=utcnow(), updated_at=utcnow())
        )
        known = {
            r[0] for r in conn.execute(select(vms.c.id).where(vms.c.id.in_([v["uuid"] for v in listing])))
        }
        for item in listing:
            if item["uuid"] in known:
                continue
            spec = agent.call("get_vm_info", item["uuid"]).get("spec", {})
            vm_ops.insert_from_agent(conn, server_id, item, spec)
            added += 1
        changed = vm_ops.apply_listing(conn, server_id, listing)
        ctx.event(
            conn,
            "server.refreshed",
            f"server {row['name']} refreshed: {len(listing)} VM(s) on it, {added} new "
            f"to the manager, {changed} state change(s)"
            + (f"; certificate renewed ({renewed})" if renewed else ""),
        )
    remember(rt, server_id, row["name"], row["address"], row["agent_port"], row["agent_fingerprint"])
    return {
        "id": server_id,
        "vms": len(listing),
        "added": added,
        "changed": changed,
        "certificate_renewed": bool(renewed),
    }


@jobs.handler("server.refresh")
def refresh(ctx: jobs.JobContext) -> dict[str, Any]:
    return refresh_server(ctx, str(ctx.object_id))


@jobs.handler("server.refresh_all")
def refresh_all(ctx: jobs.JobContext) -> dict[str, Any]:
    """Every server the manager owns, plus any in the roster its database has lost."""
    rt = ctx.services
    with ctx.engine.begin() as conn:
        in_db = {r[0] for r in conn.execute(select(servers.c.id))}
        restored = 0
        for server_id, entry in roster_read(rt).items():
            if server_id not in in_db:
                upsert_owned(
                    conn,
                    {
                        "id": server_id,
                        "name": entry["name"],
                        "address": entry["address"],
                        "agent_port": entry["agent_port"],
                        "state": "owned",
                        "agent_fingerprint": entry["agent_fingerprint"],
                    },
                )
                restored += 1
        ids = [
            r[0]
            for r in conn.execute(select(servers.c.id).where(servers.c.state.in_(("owned", "unreachable"))))
        ]
    results, failures = [], []
    for i, server_id in enumerate(ids):
        ctx.progress(int(100 * i / max(len(ids), 1)))
        try:
            results.append(refresh_server(ctx, server_id))
        except Exception as err:  # one dead server must not stop the others
            failures.append({"id": server_id, "error": str(err).split("\n")[0]})
    with ctx.engine.begin() as conn:
        ctx.event(
            conn,
            "manager.refreshed",
            f"refreshed {len(results)} server(s), {restored} restored from the roster, "
            f"{len(failures)} failed",
            "warning" if failures else "info",
        )
    return {"refreshed": results, "failed": failures, "restored_from_roster": restored}


def note_contact(conn: Connection, server_id: str, how: str) -> bool:
    """Record that a server's agent was heard from; an ``unreachable`` server is ``owned`` again
    (with a ``server.reachable`` event). Returns whether its state changed."""
    from appliance.manager import events

    row = conn.execute(select(servers.c.name, servers.c.state).where(servers.c.id == server_id)).first()
    if row is None:
        return False
    back = row.state == "unreachable"
    values: dict[str, Any] = {"last_contact_at": utcnow()}
    if back:
        values["state"] = "owned"
    conn.execute(update(servers).where(servers.c.id == server_id).values(**values))
    if back:
        events.record(
            conn,
            type="server.reachable",
            object_type="server",
            object_id=server_id,
            message=f"server {row.name} {how}",
        )
    return back


def reconcile(rt: Any) -> dict[str, int]:
    """One round of the periodic check of every owned server: reachable or not, VM states, and a
    refresh job where the manager's view is incomplete or the agent's certificate is due."""
    from appliance.manager import events
    from appliance.manager import vms as vm_ops

    counts = {"reachable": 0, "unreachable": 0, "refreshes": 0}
    with rt.reader.connect() as conn:
        rows = list(
            conn.execute(select(servers).where(servers.c.state.in_(("owned", "unreachable")))).mappings()
        )
    for row in rows:
        try:
            client = AgentClient(
                AgentAddress(row["address"], row["agent_port"]),
                row["agent_fingerprint"] or "",
                client_cert=(rt.paths.client_cert, rt.paths.client_key),
                timeout=min(rt.config.agent_timeout_seconds, 10.0),
            )
            listing = client.call("list_vms")
        except Exception as err:
            counts["unreachable"] += 1
            if row["state"] == "owned":
                with rt.engine.begin() as conn:
                    conn.execute(update(servers).where(servers.c.id == row["id"]).values(state="unreachable"))
                    events.record(
                        conn,
                        type="server.unreachable",
                        severity="warning",
                        object_type="server",
                        object_id=row["id"],
                        message=f"server {row['name']} does not answer: {str(err).splitlines()[0]}",
                    )
                rt.bell.ring()
            continue
        counts["reachable"] += 1
        with rt.engine.begin() as conn:
            note_contact(conn, row["id"], "answers again")
            vm_ops.apply_listing(conn, row["id"], listing)
            pending = conn.execute(
                select(jobs.jobs.c.id).where(
                    jobs.jobs.c.object_id == row["id"], jobs.jobs.c.state.in_(("queued", "running"))
                )
            ).first()
            if pending is None and (not row["hardware"] or needs_new_certificate(conn, row["id"])):
                jobs.submit(
                    conn,
                    kind="server.refresh",
                    summary=f"refresh server {row['name']}",
                    request={},
                    created_by="scheduler",
                    object_type="server",
                    object_id=row["id"],
                )
                counts["refreshes"] += 1
        rt.bell.ring()
    if counts["refreshes"]:
        rt.runner.notify()
    return counts
