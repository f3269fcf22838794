"""Jobs survive restarts, can be aborted, run one at a time per object; events page, stream, acknowledge."""

from __future__ import annotations

import itertools
import threading
import time

import httpx
import mysql.connector

from appliance.manager.dburl import parse_db_url
from tests.conftest import RunningManager
from tests.manager.helpers import create, error_of, finished_job, unique


def _sql(db_url: str, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    url = parse_db_url(db_url)
    conn = mysql.connector.connect(
        user=url.user, password=url.password, host=url.host, port=url.port, database=url.database
    )
    try:
        cur = conn.cursor()
        cur.execute(statement, params)
        rows = cur.fetchall() if cur.with_rows else []
        conn.commit()
        return rows  # type: ignore[return-value]
    finally:
        conn.close()


def test_running_job_is_failed_with_reason_after_restart(fresh_manager: RunningManager) -> None:
    with fresh_manager.client() as c:
        vm = create(c, "vms", {"name": "survivor"})
    fresh_manager.stop()
    # A job the previous process was running when it died, and one still queued.
    _sql(
        fresh_manager.db_url,
        "INSERT INTO jobs (kind, summary, object_type, object_id, state, progress, request, abort_requested,"
        " created_by, created_at, started_at) VALUES ('object.update', 'interrupted', 'vm', %s, 'running', 40,"
        " '{\"values\": {\"vcpus\": 3}}', 0, 'admin', NOW(6), NOW(6))",
        (vm,),
    )
    _sql(
        fresh_manager.db_url,
        "INSERT INTO jobs (kind, summary, object_type, object_id, state, progress, request, abort_requested,"
        " created_by, created_at) VALUES ('object.update', 'queued before stop', 'vm', %s, 'queued', 0,"
        " '{\"values\": {\"vcpus\": 5}}', 0, 'admin', NOW(6))",
        (vm,),
    )
    fresh_manager.start()
    with fresh_manager.client() as c:
        failed = c.get("/jobs", params={"state": "failed"}).json()["items"]
        assert [j["summary"] for j in failed] == ["interrupted"]
        assert failed[0]["error"]["code"] == "manager_restarted"
        assert "restart" in failed[0]["error"]["message"]
        queued = next(j for j in c.get("/jobs").json()["items"] if j["summary"] == "queued before stop")
        assert c.get(f"/jobs/{queued['id']}", params={"wait": 30}).json()["state"] == "succeeded"
        assert c.get(f"/vms/{vm}").json()["vcpus"] == 5


def test_jobs_on_one_object_run_in_order(admin: httpx.Client) -> None:
    vm = create(admin, "vms", {"name": unique("seq")})
    responses = [admin.patch(f"/vms/{vm}", json={"vcpus": n}) for n in range(1, 9)]
    responses.append(admin.delete(f"/vms/{vm}"))
    states = [finished_job(admin, r)["state"] for r in responses]
    assert states == ["succeeded"] * 9
    jobs = [admin.get(f"/jobs/{r.json()['id']}").json() for r in responses]
    for earlier, later in itertools.pairwise(jobs):
        assert earlier["finished_at"] <= later["started_at"]


def test_abort_queued_job_and_refuse_finished(admin: httpx.Client, manager: RunningManager) -> None:
    vm = create(admin, "vms", {"name": unique("ab")})
    # Queue jobs faster than they run, then abort the last one.
    responses = [admin.patch(f"/vms/{vm}", json={"vcpus": n}) for n in range(1, 30)]
    last = responses[-1].json()["id"]
    r = admin.post(f"/jobs/{last}/abort")
    if r.status_code == 202:
        job = admin.get(f"/jobs/{last}", params={"wait": 30}).json()
        assert job["state"] == "aborted" or job["abort_requested"]
    else:  # it had already run: the answer says so
        assert r.status_code == 409 and "already" in error_of(r)["message"]
    first = responses[0].json()["id"]
    admin.get(f"/jobs/{first}", params={"wait": 30})
    r = admin.post(f"/jobs/{first}/abort")
    assert r.status_code == 409
    with manager.client() as c:
        for resp in responses:
            c.get(f"/jobs/{resp.json()['id']}", params={"wait": 30})


def test_events_page_by_since(admin: httpx.Client) -> None:
    start = admin.get("/events", params={"limit": 1000}).json()
    since = start["next_since"]
    while start["items"]:
        start = admin.get("/events", params={"since": since, "limit": 1000}).json()
        since = start["next_since"]
    create(admin, "server-pools", {"name": unique("evp")})
    page = admin.get("/events", params={"since": since}).json()
    assert [e["type"] for e in page["items"]] == ["job.started", "server_pool.created", "job.succeeded"]
    assert all(e["id"] > since for e in page["items"])


def test_acknowledge_event_is_a_job(admin: httpx.Client) -> None:
    create(admin, "server-pools", {"name": unique("ack")})
    event = admin.get("/events", params={"acknowledged": False, "limit": 1}).json()["items"][0]
    job = finished_job(admin, admin.post(f"/events/{event['id']}/acknowledge"))
    assert job["state"] == "succeeded"
    acked = admin.get(f"/events/{event['id']}").json()
    assert acked["acknowledged"] is True and acked["acknowledged_by"] == "admin"
    assert admin.post(f"/events/{event['id']}/acknowledge").status_code == 409


def test_event_stream_delivers_new_events(manager: RunningManager, admin: httpx.Client) -> None:
    received: list[str] = []
    ready = threading.Event()

    def listen() -> None:
        with manager.client() as c, c.stream("GET", "/events/stream", timeout=30) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            ready.set()
            for line in r.iter_lines():
                if line.startswith("data: ") and '"server_pool.created"' in line and "sse-pool" in line:
                    received.append(line)
                    return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert ready.wait(15)
    time.sleep(0.5)
    create(admin, "server-pools", {"name": unique("sse-pool")})
    t.join(20)
    assert received, "no event arrived on the stream"
