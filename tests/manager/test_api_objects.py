"""Servers, pools, repositories and VMs through the WS-API: every change is a job."""

from __future__ import annotations

import httpx

from tests.manager.helpers import create, error_of, finished_job, unique


def test_vm_lifecycle_through_jobs(admin: httpx.Client) -> None:
    repo = create(
        admin, "repositories", {"name": unique("repo"), "kind": "nfs", "uri": "nfs://filer/export/repo"}
    )
    name = unique("vm")
    body = {
        "name": name,
        "vcpus": 2,
        "memory_mib": 1024,
        "domain_type": "pv",
        "repository_id": repo,
        "disks": [{"name": "root", "size_mib": 2048, "repository_id": repo}],
        "nics": [{"network": "xenbr0"}],
    }
    created = admin.post("/vms", json=body)
    job = finished_job(admin, created)
    assert job["state"] == "succeeded" and job["kind"] == "object.create" and job["progress"] == 100
    vm_id = job["result"]["id"]
    vm = admin.get(f"/vms/{vm_id}").json()
    assert (vm["name"], vm["vcpus"], vm["state"], vm["disks"][0]["size_mib"]) == (name, 2, "stopped", 2048)

    job = finished_job(admin, admin.patch(f"/vms/{vm_id}", json={"vcpus": 4, "description": "db server"}))
    assert job["state"] == "succeeded"
    assert admin.get(f"/vms/{vm_id}").json()["vcpus"] == 4

    listed = admin.get("/vms", params={"name": name}).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == vm_id

    assert finished_job(admin, admin.delete(f"/vms/{vm_id}"))["state"] == "succeeded"
    assert admin.get(f"/vms/{vm_id}").status_code == 404

    types = {
        e["type"] for e in admin.get("/events", params={"object_id": vm_id, "limit": 100}).json()["items"]
    }
    assert {"vm.created", "vm.updated", "vm.deleted", "job.started", "job.succeeded"} <= types


def test_duplicate_name_is_409_and_nothing_queued(admin: httpx.Client) -> None:
    name = unique("pool")
    create(admin, "server-pools", {"name": name})
    jobs_before = admin.get("/jobs", params={"limit": 1}).json()["total"]
    dup = admin.post("/server-pools", json={"name": name})
    assert dup.status_code == 409
    assert "already exists" in error_of(dup)["message"]
    assert admin.get("/jobs", params={"limit": 1}).json()["total"] == jobs_before


def test_pool_with_servers_cannot_be_deleted(admin: httpx.Client) -> None:
    pool = create(admin, "server-pools", {"name": unique("pool"), "virtual_ip": "192.0.2.10"})
    server = create(admin, "servers", {"address": "192.0.2.11", "name": unique("srv"), "pool_id": pool})
    assert admin.get(f"/servers/{server}").json()["state"] == "unowned"
    refused = admin.delete(f"/server-pools/{pool}")
    assert refused.status_code == 409 and "server" in error_of(refused)["message"]
    assert (
        finished_job(admin, admin.patch(f"/servers/{server}", json={"pool_id": None}))["state"] == "succeeded"
    )
    assert finished_job(admin, admin.delete(f"/server-pools/{pool}"))["state"] == "succeeded"


def test_server_name_defaults_to_address(admin: httpx.Client) -> None:
    address = f"srv-{unique('a')}.example"
    server = create(admin, "servers", {"address": address})
    assert admin.get(f"/servers/{server}").json()["name"] == address


def test_unknown_reference_is_404(admin: httpx.Client) -> None:
    r = admin.post("/vms", json={"name": unique("vm"), "server_id": "00000000-0000-0000-0000-000000000000"})
    assert r.status_code == 404 and "server_id" in error_of(r)["message"]


def test_unknown_ids_are_404_json(admin: httpx.Client) -> None:
    for path in ("/vms/nope", "/servers/1234", "/jobs/999999999", "/events/999999999", "/backups/x"):
        r = admin.get(path)
        assert r.status_code == 404, path
        assert error_of(r)["code"] == "not_found"
    assert admin.patch("/vms/0000", json={"vcpus": 1}).status_code == 404
    assert admin.delete("/repositories/0000").status_code == 404


def test_pagination_and_filters(admin: httpx.Client) -> None:
    tag = unique("page")
    for i in range(5):
        create(admin, "repositories", {"name": f"{tag}-{i}", "kind": "local", "uri": f"/srv/{i}"})
    page = admin.get("/repositories", params={"limit": 2, "offset": 1, "kind": "local"}).json()
    assert page["limit"] == 2 and page["offset"] == 1 and len(page["items"]) == 2 and page["total"] >= 5
    names = [r["name"] for r in admin.get("/repositories", params={"limit": 1000}).json()["items"]]
    assert names == sorted(names)
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "ten"}):
        r = admin.get("/vms", params=params)
        assert r.status_code == 400, params
        assert error_of(r)["code"] == "invalid_request"


def test_sql_metacharacters_are_data_not_sql(admin: httpx.Client) -> None:
    hostile = "x' OR '1'='1"
    assert admin.get("/vms", params={"name": hostile}).json()["total"] == 0
    r = admin.post("/vms", json={"name": "a'; DROP TABLE vms; --"})
    assert r.status_code == 400
    desc = "'; DROP TABLE vms; -- \" \\ %"
    vm = create(admin, "vms", {"name": unique("vm"), "description": desc})
    assert admin.get(f"/vms/{vm}").json()["description"] == desc
    assert admin.get("/vms").status_code == 200
