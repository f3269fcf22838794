"""A lab's status file (``WORKDIR/status.json``): written by the lab's supervisor process, read by
`appliance lab status|ssh|down`. Pure: no QEMU here."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from appliance.errors import UsageError

STATUS_FILE = "status.json"


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str  # on the lab segment
    ports: dict[str, int]  # guest port -> loopback port on this host


@dataclass(frozen=True)
class LabStatus:
    state: str  # starting | ready | failed | stopping | down
    pid: int
    message: str = ""
    api_url: str = ""
    admin_user: str = "admin"
    admin_password: str = ""
    root_password: str = ""
    fingerprint: str = ""
    hosts: tuple[HostStatus, ...] = field(default=())

    def host(self, name: str) -> HostStatus:
        for host in self.hosts:
            if host.name == name:
                return host
        names = ", ".join(h.name for h in self.hosts) or "none yet"
        raise UsageError(f"the lab has no host called {name!r}", f"hosts: {names}")

    def describe(self) -> list[str]:
        lines = [f"lab: {self.state}" + (f" ({self.message})" if self.message else "")]
        if self.api_url:
            lines += [
                f"WS-API:         {self.api_url}",
                f"web GUI:        {self.api_url.removesuffix('/api/v1')}/ui/",
                f"admin login:    {self.admin_user} / {self.admin_password}",
                f"CA fingerprint: {self.fingerprint}",
                f"root password:  {self.root_password} (all hosts; or `appliance lab ssh NAME`)",
            ]
        for host in self.hosts:
            ports = ", ".join(f"{guest}->127.0.0.1:{local}" for guest, local in sorted(host.ports.items()))
            lines.append(f"  {host.name:<9} {host.address:<14} {ports}")
        return lines


def write_status(workdir: Path, status: LabStatus) -> None:
    path = workdir / STATUS_FILE
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(asdict(status), indent=2) + "\n")
    partial.chmod(0o600)  # it holds the lab's passwords
    partial.replace(path)


def read_status(workdir: Path) -> LabStatus | None:
    path = workdir / STATUS_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    hosts = tuple(HostStatus(h["name"], h["address"], {k: int(v) for k, v in h["ports"].items()})
                  for h in data.pop("hosts", []))  # fmt: skip
    return LabStatus(**data, hosts=hosts)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_status(workdir: Path) -> LabStatus | None:
    """The status file, with ``state`` corrected to ``down`` when its supervisor is gone."""
    status = read_status(workdir)
    if status is None or status.state == "down" or process_alive(status.pid):
        return status
    return LabStatus(**{**asdict(status), "hosts": status.hosts, "state": "down",
                        "message": f"its supervisor (pid {status.pid}) is not running"})  # fmt: skip
