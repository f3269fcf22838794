"""Commands on the trust and orchestration endpoints: enrollment tokens, discovery, release, VM power, refresh.

Where the live manager does not have an endpoint yet, the test skips, naming it (asked of the manager's
own OpenAPI document at run time, so the test runs as soon as the endpoint lands).
"""

from __future__ import annotations

import json

import httpx
import pytest

from appliance.manager import dbserver
from tests.manager.helpers import create, unique
from tests.shell.conftest import Ssh


def need(api: httpx.Client, method: str, path: str) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    if method.lower() not in paths.get(f"/api/v1{path}", {}):
        pytest.skip(f"the manager has no {method} /api/v1{path} yet")


def test_create_enrollment_token(ssh: Ssh, api: httpx.Client) -> None:
    need(api, "POST", "/enrollment-tokens")
    out = ssh.run("createEnrollmentToken ttl=2h uses=3 outputMode=json")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    token = answer.get("token") or (answer.get("result") or {}).get("token")
    assert token
    listed = api.get("/enrollment-tokens").json()["items"]
    mine = next(t for t in listed if t["id"] == (answer.get("id") if "token" in answer else answer["result"]["id"]))
    assert mine["uses"] == 3
    bad = ssh.run("createEnrollmentToken ttl=soon")
    assert bad.returncode == 2 and "is not a duration" in bad.stderr


def test_discover_server_reports_the_jobs_failure(ssh: Ssh, api: httpx.Client) -> None:
    need(api, "POST", "/servers")
    fields = api.get("/openapi.json").json()["components"]["schemas"]["ServerCreate"]["properties"]
    if "agent_password" not in fields:
        pytest.skip("the manager's POST /api/v1/servers has no agent_password yet")
    closed = dbserver.free_tcp_port()  # nothing listens there: the discovery job must fail
    out = ssh.run(f"discoverServer ipAddress=127.0.0.1 password=agent-pw agentPort={closed}")
    assert out.returncode == 1
    job = api.get("/jobs", params={"kind": "server.discover", "limit": 1}).json()["items"][0]
    assert job["state"] == "failed"
    assert f"job {job['id']} failed" in out.stderr
    usage = ssh.run("discoverServer ipAddress=127.0.0.1")
    assert usage.returncode == 2 and "needs password=" in usage.stderr


def test_release_server_shows_the_apis_refusal(ssh: Ssh, api: httpx.Client) -> None:
    need(api, "POST", "/servers/{object_id}/release")
    name = unique("srv")
    create(api, "servers", {"address": "192.0.2.10", "name": name})
    out = ssh.run(f"releaseServer name={name}")
    assert out.returncode == 1 and "is not owned" in out.stderr


def test_start_vm_follows_its_job(ssh: Ssh, api: httpx.Client) -> None:
    need(api, "POST", "/vms/{object_id}/start")
    vm_id = create(api, "vms", {"name": unique("vm")})
    out = ssh.run(f"start Vm id={vm_id} outputMode=json")
    answer = json.loads(out.stdout or out.stderr)
    job = answer.get("job") or answer
    assert (job["kind"], job["object_id"]) == ("vm.start", vm_id), answer
    assert out.returncode == (0 if job["state"] == "succeeded" else 1)
    assert api.get(f"/jobs/{job['id']}").json()["state"] == job["state"]
    unknown = ssh.run(f"start Vm id={vm_id} server=no-such-server")
    assert unknown.returncode == 1 and "no Server matches no-such-server" in unknown.stderr


@pytest.mark.parametrize("command", ["stop", "kill"])
def test_stop_and_kill_a_stopped_vm_are_refused_by_the_api(ssh: Ssh, api: httpx.Client, command: str) -> None:
    need(api, "POST", "/vms/{object_id}/stop")
    vm_id = create(api, "vms", {"name": unique("vm")})
    out = ssh.run(f"{command} Vm id={vm_id}")
    assert out.returncode == 1 and "is not running" in out.stderr
    assert api.get("/jobs", params={"object_id": vm_id, "kind": "vm.stop"}).json()["total"] == 0


def test_refresh_a_server_follows_its_job(ssh: Ssh, api: httpx.Client) -> None:
    need(api, "POST", "/servers/{object_id}/refresh")
    server_id = create(api, "servers", {"address": "192.0.2.11", "name": unique("srv")})
    out = ssh.run(f"refresh Server id={server_id} outputMode=json")
    answer = json.loads(out.stdout or out.stderr)
    job = answer.get("job")
    if job is None and "error" in answer:  # refused at once (e.g. the server is not owned)
        assert out.returncode == 1 and answer["error"]["message"]
        return
    job = job or answer
    assert (job["kind"], job["object_id"]) == ("server.refresh", server_id)
    assert out.returncode == (0 if job["state"] == "succeeded" else 1)


def test_refresh_all_follows_its_job(ssh: Ssh, api: httpx.Client) -> None:
    need(api, "POST", "/servers/refresh-all")
    out = ssh.run("refreshAll outputMode=json")
    answer = json.loads(out.stdout or out.stderr)
    job = answer.get("job") or answer
    assert job["kind"] == "server.refresh_all", answer
    assert out.returncode == (0 if job["state"] == "succeeded" else 1)
