"""Agent events in the shape the manager ingests (pure)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from appliance.server.hypervisor import LifecycleEvent

SEVERITIES = ("info", "warning", "error", "critical")


def make_event(
    event_type: str, object_type: str, object_id: str, message: str, severity: str = "info"
) -> dict[str, Any]:
    """One event; ``id`` is unique per agent so a replay is recognised by the manager."""
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity}")
    return {
        "id": str(uuid.uuid4()),
        "time": time.time(),
        "severity": severity,
        "type": event_type,
        "object_type": object_type,
        "object_id": object_id,
        "message": message,
    }


_STOP_SEVERITY = {"crashed": "error", "failed": "error"}
_STOP_TEXT = {
    "shutdown": "shut down",
    "destroyed": "was forced off",
    "crashed": "crashed",
    "migrated": "migrated away",
    "saved": "was saved",
    "failed": "failed to run",
}


def lifecycle_to_event(ev: LifecycleEvent) -> dict[str, Any] | None:
    """libvirt lifecycle event → agent event; None for ones the manager does not need."""
    who = f"VM {ev.vm_name} ({ev.vm_uuid})"
    if ev.kind == "started":
        how = "" if ev.detail == "booted" else f" ({ev.detail})"
        return make_event("vm.started", "vm", ev.vm_uuid, f"{who} started{how}")
    if ev.kind == "stopped":
        text = _STOP_TEXT.get(ev.detail, f"stopped ({ev.detail})")
        return make_event(
            "vm.stopped", "vm", ev.vm_uuid, f"{who} {text}", _STOP_SEVERITY.get(ev.detail, "info")
        )
    if ev.kind == "crashed":
        return make_event("vm.crashed", "vm", ev.vm_uuid, f"{who} crashed", "error")
    if ev.kind in ("suspended", "resumed", "defined", "undefined"):
        return make_event(f"vm.{ev.kind}", "vm", ev.vm_uuid, f"{who} {ev.kind}")
    if ev.kind == "shutdown":
        return None  # the guest began shutting down; "stopped" follows
    return make_event(f"vm.{ev.kind}", "vm", ev.vm_uuid, f"{who}: {ev.kind} ({ev.detail})")


def state_change_event(vm_uuid: str, name: str, before: str, now: str) -> dict[str, Any]:
    """An event for a state change that happened while the agent was not running."""
    running = now in ("running", "blocked", "paused", "pmsuspended")
    event_type = "vm.started" if running else "vm.stopped"
    severity = "warning" if not running and before in ("running", "blocked", "paused") else "info"
    return make_event(
        event_type,
        "vm",
        vm_uuid,
        f"VM {name} ({vm_uuid}) went from {before} to {now} while the agent was not running",
        severity,
    )
