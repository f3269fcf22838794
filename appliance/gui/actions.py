"""The GUI's actions (POSTed forms). Each is one WS-API call made with the user's own token; the
API decides what the user may do, and its error is shown next to the form or row that caused it."""

from __future__ import annotations

from typing import Any

from appliance.gui.web import Action


def _number(value: str) -> int | str:
    """A whole number when the text is one; otherwise the text itself, for the API to refuse by name."""
    text = value.strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _optional_fields(act: Action, *names: str) -> dict[str, Any]:
    return {name: act.field(name) for name in names if act.field(name)}


# --- servers ---


async def discover_server(act: Action) -> None:
    act.key, act.form_name = "discover", "discover"
    body: dict[str, Any] = {"address": act.field("address"), "agent_password": act.field("agent_password")}
    body.update(_optional_fields(act, "name", "pool_id"))
    if act.field("agent_port"):
        body["agent_port"] = _number(act.field("agent_port"))
    job = await act.job("POST", "/servers", json=body, wait=15)
    if job.state == "succeeded":
        result = job.result
        fingerprint = result.get("agent_fingerprint") or result.get("fingerprint") or "?"
        act.session.notes.messages[-1] = (
            "success",
            f"Discovered and owned server {body['address']} (id {result.get('id', '?')}); "
            f"its agent certificate SHA-256 fingerprint is {fingerprint}.",
        )


async def release_server(act: Action) -> None:
    server_id = act.request.path_params["server_id"]
    act.key = f"server:{server_id}"
    await act.job("POST", f"/servers/{server_id}/release", json={"force": act.field("force") == "on"})


async def delete_server(act: Action) -> None:
    server_id = act.request.path_params["server_id"]
    act.key = f"server:{server_id}"
    await act.job("DELETE", f"/servers/{server_id}")


# --- VMs ---


async def create_vm(act: Action) -> None:
    act.key, act.form_name = "create-vm", "create-vm"
    body: dict[str, Any] = {
        "name": act.field("name"),
        "vcpus": _number(act.field("vcpus") or "1"),
        "memory_mib": _number(act.field("memory_mib") or "512"),
        "domain_type": act.field("domain_type") or "pvh",
        "ha": act.field("ha") == "on",
    }
    body.update(_optional_fields(act, "description", "server_id", "pool_id"))
    if act.field("disk_mib"):
        body["disks"] = [{"name": "disk0", "size_mib": _number(act.field("disk_mib"))}]
    if act.field("kernel"):  # direct kernel boot (PV/PVH guests)
        body["boot"] = {"kernel": act.field("kernel"), **_optional_fields(act, "initrd", "cmdline")}
    await act.job("POST", "/vms", json=body)


async def start_vm(act: Action) -> None:
    vm_id = act.request.path_params["vm_id"]
    act.key = f"vm:{vm_id}"
    await act.job("POST", f"/vms/{vm_id}/start")


async def stop_vm(act: Action) -> None:
    vm_id = act.request.path_params["vm_id"]
    act.key = f"vm:{vm_id}"
    await act.job("POST", f"/vms/{vm_id}/stop", json={"force": act.field("force") == "on"})


async def delete_vm(act: Action) -> None:
    vm_id = act.request.path_params["vm_id"]
    act.key = f"vm:{vm_id}"
    await act.job("DELETE", f"/vms/{vm_id}")


# --- server pools ---


async def create_pool(act: Action) -> None:
    act.key, act.form_name = "create-pool", "create-pool"
    body: dict[str, Any] = {"name": act.field("name")}
    body.update(_optional_fields(act, "description", "virtual_ip"))
    await act.job("POST", "/server-pools", json=body)


async def delete_pool(act: Action) -> None:
    pool_id = act.request.path_params["pool_id"]
    act.key = f"pool:{pool_id}"
    await act.job("DELETE", f"/server-pools/{pool_id}")


# --- jobs and events ---


async def abort_job(act: Action) -> None:
    job_id = act.request.path_params["job_id"]
    act.key = f"job:{job_id}"
    job = await act.gui.api.job("POST", f"/jobs/{job_id}/abort", act.token)
    act.say(f"Asked job {job.id} to stop ({job.summary}).", "info")


async def acknowledge_event(act: Action) -> None:
    event_id = act.request.path_params["event_id"]
    act.key = f"event:{event_id}"
    await act.job("POST", f"/events/{event_id}/acknowledge", done=f"Event {event_id} acknowledged.")


# --- backups ---


async def create_backup(act: Action) -> None:
    act.key = "backup-now"
    await act.job("POST", "/backups", wait=0)


async def delete_backup(act: Action) -> None:
    backup_id = act.request.path_params["backup_id"]
    act.key = f"backup:{backup_id}"
    await act.job("DELETE", f"/backups/{backup_id}")


async def configure_backups(act: Action) -> None:
    act.key, act.form_name = "backup-config", "backup-config"
    body = {"interval_minutes": _number(act.field("interval_minutes")), "keep": _number(act.field("keep"))}
    await act.job("PUT", "/backups/config", json=body, done="Backup schedule saved.")


# --- trust ---


async def create_token(act: Action) -> None:
    act.key, act.form_name = "create-token", "create-token"
    body = {
        "ttl_seconds": _number(act.field("ttl_hours") or "24"),
        "uses": _number(act.field("uses") or "1"),
    }
    if isinstance(body["ttl_seconds"], int):
        body["ttl_seconds"] *= 3600
    answer = await act.gui.api.call("POST", "/enrollment-tokens", act.token, json=body, params={"wait": 10})
    # The WS-API answers with the token itself, or (as a job) with the token in the job's result.
    result = (answer.get("result") or {}) if "state" in answer else answer
    if "state" in answer and answer["state"] != "succeeded":
        err = (answer.get("error") or {}).get("message") or f"job {answer['id']} is {answer['state']}"
        act.fail(f"The token was not made: {err}")
        return
    act.session.notes.secrets["token"] = str(result.get("token", ""))
    act.session.notes.secrets["token_expires"] = str(result.get("expires_at", ""))
    act.say("Enrollment token made. Copy it now: it is shown only once.")


async def delete_token(act: Action) -> None:
    token_id = act.request.path_params["token_id"]
    act.key = f"token:{token_id}"
    await act.gui.api.call("DELETE", f"/enrollment-tokens/{token_id}", act.token)
    act.say("Enrollment token withdrawn.")
