"""One L2 segment joining test machines: a VDE switch on a unix socket (no host interface, no IP
traffic outside QEMU), plus deterministic MACs and addresses, and host access through QEMU's
user-mode network restricted to forwarded loopback ports.

Addressing follows the NixOS test driver: machine number N (1..254) on VLAN V has the MAC
52:54:00:12:VV:NN and the address 192.168.V.N/24.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ApplianceError


def mac_address(vlan: int, number: int) -> str:
    if not 1 <= vlan <= 255 or not 1 <= number <= 254:
        raise ValueError(f"vlan 1..255 and machine number 1..254, not {vlan}/{number}")
    return f"52:54:00:12:{vlan:02x}:{number:02x}"


def ip_address(vlan: int, number: int) -> str:
    if not 1 <= vlan <= 255 or not 1 <= number <= 254:
        raise ValueError(f"vlan 1..255 and machine number 1..254, not {vlan}/{number}")
    return f"192.168.{vlan}.{number}"


def free_tcp_port() -> int:
    """A free TCP port on 127.0.0.1 (for a hostfwd)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class HostForward:
    """Host 127.0.0.1:host_port reaches the guest's guest_port (TCP) on its user-mode NIC."""

    guest_port: int
    host_port: int


def user_netdev_args(netdev_id: str, forwards: tuple[HostForward, ...]) -> list[str]:
    """A user-mode NIC that only carries the forwarded ports (``restrict=on``: no outbound traffic)."""
    opts = [f"user,id={netdev_id},restrict=on,net=10.0.2.0/24"]
    opts += [f"hostfwd=tcp:127.0.0.1:{f.host_port}-:{f.guest_port}" for f in forwards]
    return ["-netdev", ",".join(opts)]


class VdeSwitch:
    """A ``vde_switch`` process; every machine on it shares one Ethernet segment."""

    def __init__(self, directory: Path, vlan: int = 1) -> None:
        self.directory = directory  # the switch's control directory (a unix socket inside)
        self.vlan = vlan
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return ["vde_switch", "--sock", str(self.directory), "--dirmode", "0700", "--hub"]

    def netdev_args(self, netdev_id: str) -> list[str]:
        return ["-netdev", f"vde,id={netdev_id},sock={self.directory}"]

    def start(self, timeout: float = 10.0) -> None:
        if shutil.which("vde_switch") is None:
            raise ApplianceError("vde_switch is not installed", "install the Debian package vde2 (tools/setup.sh does)")
        # stdin stays an open pipe: vde_switch reads its console there and exits at end of file
        self._proc = subprocess.Popen(
            self.command(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while not (self.directory / "ctl").exists():
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise ApplianceError(f"vde_switch exited at start: {err.strip()}", "see its message above")
            if time.monotonic() > deadline:
                self.stop()
                raise ApplianceError(f"vde_switch made no socket in {self.directory} within {timeout:.0f} s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None
