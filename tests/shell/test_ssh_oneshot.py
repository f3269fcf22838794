"""One-shot commands through OpenSSH's client: text and JSON output, exit status, bad input changes nothing."""

from __future__ import annotations

import json

import httpx

from tests.manager.helpers import create, unique
from tests.shell.conftest import CliManager, Ssh


def test_create_list_show_in_text_and_json(ssh: Ssh, api: httpx.Client) -> None:
    name = unique("vm")
    made = ssh.run(f"create Vm name={name} vcpus=2 memoryMib=256")
    assert made.returncode == 0, made.stderr
    assert "succeeded: create VM" in made.stdout
    vm = api.get("/vms", params={"name": name}).json()["items"][0]
    assert (vm["vcpus"], vm["memory_mib"]) == (2, 256)

    listed = ssh.run("list Vm")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["id", "name", "state", "vcpus", "memory_mib", "server_id"]
    row = next(r for r in rows if name in r)
    assert row.split()[:5] == [vm["id"], name, "stopped", "2", "256"]
    # Columns are aligned: every row's second column starts where the header's does.
    assert row.index(name) == header.index("name")

    as_json = ssh.run("list Vm outputMode=json")
    assert as_json.returncode == 0, as_json.stderr
    body = json.loads(as_json.stdout)
    assert body["total"] == api.get("/vms").json()["total"]
    assert vm["id"] in {item["id"] for item in body["items"]}

    shown = json.loads(ssh.run(f"set outputMode=json; show Vm name={name}").stdout.split("}\n", 1)[1])
    assert shown == api.get(f"/vms/{vm['id']}").json()


def test_edit_and_delete_wait_for_their_jobs(ssh: Ssh, api: httpx.Client) -> None:
    name = unique("vm")
    create(api, "vms", {"name": name})
    edited = ssh.run(f"edit Vm name={name} vcpus=3 description='two words'")
    assert edited.returncode == 0, edited.stderr
    vm = api.get("/vms", params={"name": name}).json()["items"][0]
    assert (vm["vcpus"], vm["description"]) == (3, "two words")
    deleted = ssh.run(f"delete Vm {name}")
    assert deleted.returncode == 0, deleted.stderr
    assert api.get("/vms", params={"name": name}).json()["total"] == 0


def test_wait_false_answers_before_the_job_ends(ssh: Ssh, api: httpx.Client) -> None:
    name = unique("pool")
    out = ssh.run(f"create ServerPool name={name} wait=false outputMode=json")
    assert out.returncode == 0, out.stderr
    job = json.loads(out.stdout)
    assert job["kind"] == "object.create" and job["state"] in ("queued", "running", "succeeded")
    done = api.get(f"/jobs/{job['id']}", params={"wait": 30}).json()
    assert done["state"] == "succeeded"


def test_unknown_command_and_bad_attributes_fail_and_change_nothing(ssh: Ssh, api: httpx.Client) -> None:
    before = api.get("/vms").json()["total"]
    name = unique("vm")
    cases = {
        "frobnicate Vm": "unknown command 'frobnicate'",
        f"create Vm name={name} vcpus=many": "vcpus='many' is not a whole number",
        f"create Vm name={name} colour=red": "does not know the attribute(s) colour",
        "create Vm vcpus=2": "needs name",
        f"create Vm name={name} ha=perhaps": "is not true or false",
        f"create Vm name={name} domainType=kvm": "is not one of pv, pvh, hvm",
        "create Gizmo name=x": "'Gizmo' is not an object type",
        "show Vm": "needs to know which Vm",
        "list Vm limit=0": "limit=0 is below 1",
        "create Vm name='unclosed": "close the quote",
    }
    for command, message in cases.items():
        out = ssh.run(command)
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        assert message in out.stderr, (command, out.stderr)
        assert out.stdout == ""
    assert api.get("/vms").json()["total"] == before


def test_errors_from_the_api_and_from_jobs_are_shown_with_status_1(ssh: Ssh, api: httpx.Client) -> None:
    name = unique("vm")
    create(api, "vms", {"name": name})
    duplicate = ssh.run(f"create Vm name={name}")
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    missing = ssh.run("show Vm name=no-such-vm")
    assert missing.returncode == 1 and "no Vm matches name=no-such-vm" in missing.stderr
    as_json = ssh.run("show Vm name=no-such-vm outputMode=json")
    assert json.loads(as_json.stderr)["error"]["code"] == "not_found"


def test_names_that_match_several_objects_are_an_error_listing_them(ssh: Ssh, api: httpx.Client) -> None:
    first, second = unique("srv"), unique("srv")
    ids = [create(api, "servers", {"address": "192.0.2.77", "name": n}) for n in (first, second)]
    out = ssh.run("show Server 192.0.2.77")
    assert out.returncode == 2
    assert "2 Server objects match 192.0.2.77" in out.stderr
    for server_id, name in zip(ids, (first, second), strict=True):
        assert f"id={server_id} name={name}" in out.stderr
    # A VM named like another VM's id: a bare word matches both.
    other = create(api, "vms", {"name": unique("vm")})
    create(api, "vms", {"name": other})
    clash = ssh.run(f"delete Vm {other}")
    assert clash.returncode == 2 and "2 Vm objects match" in clash.stderr
    assert api.get(f"/vms/{other}").status_code == 200  # nothing deleted
    exact = ssh.run(f"show Vm id={other}")
    assert exact.returncode == 0 and other in exact.stdout


def test_references_by_name_and_readonly_users(ssh: Ssh, api: httpx.Client) -> None:
    pool = unique("pool")
    pool_id = create(api, "server-pools", {"name": pool})
    vm = unique("vm")
    assert ssh.run(f"create Vm name={vm} pool={pool}").returncode == 0
    assert api.get("/vms", params={"name": vm}).json()["items"][0]["pool_id"] == pool_id

    reader, password = unique("ro"), "reader-pw-1234"
    create(api, "users", {"name": reader, "password": password, "role": "readonly"})
    assert ssh.run("list Vm", user=reader, password=password).returncode == 0
    refused = ssh.run(f"delete Vm {vm}", user=reader, password=password)
    assert refused.returncode == 1 and "needs the admin role" in refused.stderr
    assert api.get("/vms", params={"name": vm}).json()["total"] == 1


def test_help_jobs_events_backups_and_ca(ssh: Ssh, api: httpx.Client, cli_manager: CliManager) -> None:
    helped = ssh.run("help")
    assert helped.returncode == 0
    for command in ("list TYPE", "discoverServer", "setDbBackupConfig", "createEnrollmentToken", "exit"):
        assert command in helped.stdout
    detail = ssh.run("help create Vm")
    assert "name=<string> (required)" in detail.stdout and "domain_type=<pv|pvh|hvm>" in detail.stdout

    jobs = json.loads(ssh.run("list Job limit=5 outputMode=json").stdout)
    newest = api.get("/jobs", params={"limit": 5}).json()["items"]
    assert [j["id"] for j in jobs["items"]] == [j["id"] for j in newest]
    job = ssh.run(f"show Job id={newest[0]['id']}")
    assert f"{newest[0]['id']}" in job.stdout and newest[0]["kind"] in job.stdout

    events = json.loads(ssh.run("list Event limit=3 outputMode=json").stdout)
    assert len(events["items"]) == 3
    unacked = api.get("/events", params={"acknowledged": False, "limit": 1}).json()["items"][0]
    acked = ssh.run(f"ackEvent id={unacked['id']}")
    assert acked.returncode == 0, acked.stderr
    assert api.get(f"/events/{unacked['id']}").json()["acknowledged"] is True
    again = ssh.run(f"ackEvent id={unacked['id']}")
    assert again.returncode == 1 and "already acknowledged" in again.stderr

    config = json.loads(ssh.run("getDbBackupConfig outputMode=json").stdout)
    assert config == api.get("/backups/config").json()
    changed = ssh.run("setDbBackupConfig keep=7")
    assert changed.returncode == 0, changed.stderr
    assert api.get("/backups/config").json() == {**config, "keep": 7}
    assert ssh.run("setDbBackupConfig interval=5").returncode == 1  # the API's range check
    assert api.get("/backups/config").json()["keep"] == 7

    backup = ssh.run("backupDb")
    assert backup.returncode == 0, backup.stderr
    assert "succeeded: back up the database" in backup.stdout
    listed = json.loads(ssh.run("list Backup outputMode=json").stdout)
    assert listed["items"] == api.get("/backups").json()["items"]

    fingerprint = ssh.run("showCaFingerprint").stdout.strip()
    assert fingerprint == api.get("/ca").json()["fingerprint_sha256"]


def test_abort_job_and_delete_backup(ssh: Ssh, api: httpx.Client) -> None:
    queued = json.loads(ssh.run("backupDb wait=false outputMode=json").stdout)
    aborted = ssh.run(f"abort Job id={queued['id']}")
    finished = api.get(f"/jobs/{queued['id']}", params={"wait": 60}).json()
    if aborted.returncode == 0:  # caught it queued or running
        assert f"abort requested for job {queued['id']}" in aborted.stdout
        assert api.get(f"/jobs/{queued['id']}").json()["abort_requested"] is True
    else:  # it had already finished
        assert "has already" in aborted.stderr and finished["state"] in ("succeeded", "failed", "aborted")
    late = ssh.run(f"abort Job id={queued['id']}")
    assert late.returncode == 1 and f"job {queued['id']} has already" in late.stderr
    assert ssh.run("abort Job id=999999999").returncode == 1

    made = json.loads(ssh.run("backupDb outputMode=json").stdout)
    backup_id = made["result"]["id"]
    gone = ssh.run(f"delete Backup id={backup_id}")
    assert gone.returncode == 0, gone.stderr
    assert api.get(f"/backups/{backup_id}").status_code == 404
