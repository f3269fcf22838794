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
            servers.c.address == values["address"], servers.c.id != values["id"], servers.c.state == "unowned"
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
                    servers.c.address == addr.host
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
    hardware = agent.call("discover_hardware")
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
    return {"id": row["id"], "revoked_certificates": revoked}
