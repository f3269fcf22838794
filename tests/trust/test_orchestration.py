"""The manager drives its agents: VM lifecycle, agent-reported states, reachability, refresh-all
after the database is lost, and agent certificates renewed before they expire."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from appliance.manager import dbserver
from tests.conftest import ADMIN_PASSWORD
from tests.manager.helpers import create, finished_job, unique
from tests.trust.conftest import AGENT_PASSWORD, AgentProcess, start_manager

# libvirt's test driver defines and runs the guest without reading the files
BOOT = {"kernel": "/boot/vmlinuz-guest", "initrd": "/boot/initrd-guest", "cmdline": "console=hvc0"}


def _discover(c: httpx.Client, agent: AgentProcess) -> str:
    body = {"address": "127.0.0.1", "agent_port": agent.port, "agent_password": AGENT_PASSWORD}
    job = finished_job(c, c.post("/servers", json=body), timeout=60)
    assert job["state"] == "succeeded", job["error"]
    return str(job["result"]["id"])


def _until(predicate: Callable[[], bool], timeout: float = 40, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _events_of(c: httpx.Client, type_: str) -> list[dict[str, object]]:
    return [e for e in c.get("/events", params={"limit": 1000}).json()["items"] if e["type"] == type_]


def test_vm_lifecycle_follows_the_agent(
    tmp_path: Path, db_url: str, agents: Callable[[str], AgentProcess]
) -> None:
    mgr = start_manager(tmp_path, db_url, housekeeping_seconds=0.5, reconcile_seconds=1.0)
    try:
        a1, a2 = agents("s1"), agents("s2")
        with mgr.client() as c:
            s1, s2 = _discover(c, a1), _discover(c, a2)
            vm = create(
                c,
                "vms",
                {
                    "name": unique("guest"),
                    "vcpus": 1,
                    "memory_mib": 64,
                    "server_id": s1,
                    "nics": [{"network": "xenbr0"}],
                    "boot": BOOT,
                },
            )
            started = finished_job(c, c.post(f"/vms/{vm}/start"))
            assert started["state"] == "succeeded", started
            assert c.get(f"/vms/{vm}").json()["state"] == "running"
            # the agent's own event arrives and is attributed to the server
            _until(
                lambda: any(e["source"] == s1 and e["object_id"] == vm for e in _events_of(c, "vm.started")),
                what="the agent's vm.started event",
            )
            stopped = finished_job(c, c.post(f"/vms/{vm}/stop", json={"force": True}))
            assert stopped["state"] == "succeeded" and c.get(f"/vms/{vm}").json()["state"] == "stopped"
            _until(
                lambda: any(e["source"] == s1 and e["object_id"] == vm for e in _events_of(c, "vm.stopped")),
                what="the agent's vm.stopped event",
            )
            # move it to the other server while stopped, start it there
            assert finished_job(c, c.patch(f"/vms/{vm}", json={"server_id": s2}))["state"] == "succeeded"
            assert finished_job(c, c.post(f"/vms/{vm}/start"))["result"]["server_id"] == s2
            assert c.delete(f"/vms/{vm}").status_code == 409  # a running VM is not deleted
            assert finished_job(c, c.post(f"/vms/{vm}/stop"))["state"] == "succeeded"
            assert finished_job(c, c.delete(f"/vms/{vm}"))["state"] == "succeeded"
            listing = finished_job(c, c.post(f"/servers/{s2}/refresh"))
            assert listing["state"] == "succeeded" and listing["result"]["vms"] == 0

            # an agent that stops answering becomes unreachable, and comes back by itself
            a2.stop()
            _until(lambda: c.get(f"/servers/{s2}").json()["state"] == "unreachable", what="unreachable")
            assert _events_of(c, "server.unreachable")
            a2.start()
            _until(lambda: c.get(f"/servers/{s2}").json()["state"] == "owned", what="reachable again")
            assert _events_of(c, "server.reachable")
    finally:
        mgr.stop()


def test_an_agent_pushing_again_makes_its_server_reachable_before_the_next_check(
    tmp_path: Path, db_url: str, agents: Callable[[str], AgentProcess]
) -> None:
    # no periodic check after the first one: only the agent's push can bring the server back
    mgr = start_manager(tmp_path, db_url, housekeeping_seconds=1.0, reconcile_seconds=3600.0)
    agent = agents("s1")
    try:
        with mgr.client() as c:
            server = _discover(c, agent)
        agent.stop()
        mgr.stop()
        mgr.start()  # its first check finds the agent gone
        with mgr.client() as c:
            _until(lambda: c.get(f"/servers/{server}").json()["state"] == "unreachable", what="unreachable")
            agent.start()  # pushes agent.started
            _until(
                lambda: c.get(f"/servers/{server}").json()["state"] == "owned", what="owned after the push"
            )
            back = [e for e in _events_of(c, "server.reachable") if e["object_id"] == server]
            assert len(back) == 1 and "pushes events again" in back[0]["message"]
    finally:
        mgr.stop()


def test_refresh_all_rebuilds_a_lost_database(
    tmp_path: Path, mariadb: dbserver.MariaDBInstance, db_url: str, agents: Callable[[str], AgentProcess]
) -> None:
    mgr = start_manager(tmp_path, db_url)
    agent = agents("s1")
    with mgr.client() as c:
        server = _discover(c, agent)
        vm = create(
            c, "vms", {"name": "survivor", "vcpus": 2, "memory_mib": 96, "server_id": server, "boot": BOOT}
        )
        assert finished_job(c, c.post(f"/vms/{vm}/start"))["state"] == "succeeded"
    mgr.stop()
    # the database is lost; a new, empty one is set up for the same manager (UUID and CA kept)
    dbserver.create_database(mariadb, "rebuilt", user="rebuilt", password="rebuilt-pw")
    new_url = mariadb.url("rebuilt", "rebuilt-pw", "rebuilt")
    pw = tmp_path / "pw"
    pw.write_text(ADMIN_PASSWORD)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance",
            "manager",
            "init",
            "--state-dir",
            str(mgr.state_dir),
            "--db-url",
            new_url,
            "--admin-password-file",
            str(pw),
            "--keep-identity",
        ],
        check=True,
    )
    mgr.db_url = new_url
    mgr.start()
    try:
        with mgr.client() as c:
            assert c.get("/servers").json()["total"] == 0
            job = finished_job(c, c.post("/servers/refresh-all"), timeout=60)
            assert job["state"] == "succeeded", job["error"]
            assert job["result"]["restored_from_roster"] == 1 and not job["result"]["failed"]
            assert c.get(f"/servers/{server}").json()["state"] == "owned"
            restored = c.get(f"/vms/{vm}").json()
            assert (restored["name"], restored["vcpus"], restored["state"], restored["server_id"]) == (
                "survivor",
                2,
                "running",
                server,
            )
            # the agent's pushes are accepted again (a new certificate was issued on record)
            assert job["result"]["refreshed"][0]["certificate_renewed"] is True
    finally:
        mgr.stop()
        dbserver.drop_database(mariadb, "rebuilt")


def test_agent_certificates_are_renewed_before_they_expire(
    tmp_path: Path, db_url: str, agents: Callable[[str], AgentProcess]
) -> None:
    # a 45-second certificate life: renewal is due after 30 s, well before expiry
    mgr = start_manager(
        tmp_path, db_url, leaf_lifetime_days=45 / 86400, housekeeping_seconds=0.5, reconcile_seconds=1.0
    )
    try:
        agent = agents("s1")
        with mgr.client() as c:
            server = _discover(c, agent)
            _until(
                lambda: any(
                    j["state"] == "succeeded" and j["result"]["certificate_renewed"]
                    for j in c.get("/jobs", params={"kind": "server.refresh", "object_id": server}).json()[
                        "items"
                    ]
                    if j["result"]
                ),
                timeout=60,
                what="a renewal",
            )
            renewed = [
                e for e in _events_of(c, "server.refreshed") if "certificate renewed" in str(e["message"])
            ]
            assert renewed
            # the agent is off while its certificate expires; when it is back, it is renewed by itself
            agent.stop()
            expired_at = time.monotonic() + 46
            time.sleep(max(0.0, expired_at - time.monotonic()))
            agent.start()
            since = max(e["id"] for e in c.get("/events", params={"limit": 1000}).json()["items"])
            _until(
                lambda: any(
                    e["source"] == server
                    for e in c.get("/events", params={"since": since, "limit": 1000}).json()["items"]
                ),
                timeout=60,
                what="pushes from the agent after its certificate expired",
            )
            assert not [
                e
                for e in c.get("/events", params={"since": since, "limit": 1000}).json()["items"]
                if e["type"] == "agent.certificate_refused" and e["object_id"] == server
            ][1:]
    finally:
        mgr.stop()
