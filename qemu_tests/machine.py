"""``Machine``: one QEMU process driven like the NixOS test driver's machines.

- serial console (ttyS0 on QEMU's stdio) driven by pexpect; a reader thread drains it all the
  time, so the guest never blocks on a full console and the log in the results folder is current;
- commands run in the guest's console shell, framed by unique markers, with their exit code;
- QMP on a unix socket for power, removable media and links;
- disks as qcow2 overlays on backing files (the backing file is never written);
- NICs: one on the shared VDE segment (deterministic MAC) and, if asked, a user-mode NIC that
  only carries TCP ports forwarded from 127.0.0.1.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pexpect

from qemu_tests.accel import QEMU
from qemu_tests.network import (
    HostForward,
    VdeSwitch,
    free_tcp_port,
    ip_address,
    mac_address,
    user_netdev_args,
)
from qemu_tests.qmp import QMPClient, QMPError
from qemu_tests.retry import Deadline, WaitTimeout, retry

CONSOLE_TAIL_LINES = 40
CONSOLE_CHUNK_PAUSE = 0.05  # seconds between chunks (MachineConfig.console_chunk)
MAX_COMMAND_CHARS = 3000  # a console line holds 4095 characters; base64 grows by a third
CONSOLE_BUFFER_MAX = 4 * 1024 * 1024


class MachineError(AssertionError):
    """A guest command or wait failed; the message ends with the machine's last console lines."""


@dataclass(frozen=True)
class Disk:
    """A disk image; with ``overlay`` the machine writes to a qcow2 overlay in its state dir."""

    image: Path
    image_format: str = "raw"
    overlay: bool = True
    interface: str = "virtio"  # virtio | ide


@dataclass(frozen=True)
class MachineConfig:
    name: str
    number: int  # 1..254: MAC and address on the segment
    memory_mb: int = 256
    kernel: Path | None = None
    initrd: Path | None = None
    append: str = ""
    cdrom: Path | None = None
    disks: tuple[Disk, ...] = ()
    forward_ports: tuple[int, ...] = ()  # guest TCP ports reachable from the host
    nic_model: str = "e1000"
    # disk | cdrom | disk-then-cdrom (a blank disk falls through to the CD, an installed one boots)
    boot_from: str = "disk"
    # CPU model under TCG instead of qemu64 (KVM always passes the host's). Xen servers need an
    # Intel one: on AMD, Xen hides SEP and libvirt's libxl driver then finds no host CPU model.
    tcg_cpu: str | None = None
    # Type this many characters at a time, then pause: Xen's serial input ring is small and drops
    # what dom0 has not read yet (long command lines arrived cut). None types in one go.
    console_chunk: int | None = None
    extra_args: tuple[str, ...] = field(default=())

    @property
    def mac(self) -> str:
        return mac_address(1, self.number)

    @property
    def ip(self) -> str:
        return ip_address(1, self.number)

    @property
    def host_mac(self) -> str:
        """MAC of the user-mode NIC that carries the forwarded host ports."""
        return f"52:54:00:ff:00:{self.number:02x}"


def with_tcg_cpu(accel: tuple[str, ...], model: str | None) -> tuple[str, ...]:
    """``accel`` with its ``-cpu`` replaced by ``model`` when it runs TCG."""
    if model is None or "tcg" not in accel or "-cpu" not in accel:
        return accel
    i = accel.index("-cpu")
    return (*accel[: i + 1], model, *accel[i + 2 :])


def overlay_command(backing: Path, backing_format: str, overlay: Path) -> list[str]:
    return [
        "qemu-img",
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        str(backing.resolve()),
        "-F",
        backing_format,
        str(overlay),
    ]


def qemu_command(
    config: MachineConfig,
    accel: tuple[str, ...],
    *,
    qmp_socket: Path,
    disk_files: tuple[tuple[Path, str], ...],
    switch: VdeSwitch | None,
    forwards: tuple[HostForward, ...],
) -> list[str]:
    """The whole QEMU command line (pure: no files are touched)."""
    cmd = [
        QEMU, "-machine", "q35", *with_tcg_cpu(accel, config.tcg_cpu), "-m", str(config.memory_mb), "-smp", "1",
        "-name", config.name, "-display", "none", "-nodefaults", "-no-user-config",
        "-serial", "stdio", "-monitor", "none",
        "-qmp", f"unix:{qmp_socket},server=on,wait=off",
    ]  # fmt: skip
    if config.kernel is not None:
        cmd += ["-kernel", str(config.kernel), "-append", config.append]
        if config.initrd is not None:
            cmd += ["-initrd", str(config.initrd)]
    for i, (path, fmt) in enumerate(disk_files):
        disk = config.disks[i]
        cmd += ["-drive", f"if=none,id=disk{i},format={fmt},file={path}"]
        if disk.interface == "virtio":
            cmd += ["-device", f"virtio-blk-pci,drive=disk{i},id=vd{i}" + (",bootindex=1" if i == 0 else "")]
        else:
            cmd += ["-device", f"ide-hd,drive=disk{i},id=hd{i}" + (",bootindex=1" if i == 0 else "")]
    # the CD-ROM drive always exists (empty when no ISO) so media can be changed later over QMP
    cd_opts = "if=none,id=cd0,media=cdrom,readonly=on" + (
        f",format=raw,file={config.cdrom}" if config.cdrom else ""
    )
    boot_cd = ""
    if config.kernel is None and config.boot_from in ("cdrom", "disk-then-cdrom"):
        boot_cd = ",bootindex=0" if config.boot_from == "cdrom" else ",bootindex=2"
    cmd += ["-drive", cd_opts, "-device", f"ide-cd,drive=cd0,id=cdrom{boot_cd}"]
    if switch is not None:
        cmd += switch.netdev_args("lan")
        cmd += ["-device", f"{config.nic_model},netdev=lan,id=nic-lan,mac={config.mac}"]
    if forwards:
        cmd += user_netdev_args("host", forwards)
        cmd += ["-device", f"{config.nic_model},netdev=host,id=nic-host,mac={config.host_mac}"]
    cmd += list(config.extra_args)
    return cmd


class Machine:
    def __init__(
        self,
        config: MachineConfig,
        *,
        state_dir: Path,
        results_dir: Path,
        accel: tuple[str, ...],
        deadline: Deadline,
        switch: VdeSwitch | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.state_dir = state_dir
        self.console_log = results_dir / f"{config.name}-console.log"
        self.accel = accel
        self.deadline = deadline
        self.switch = switch
        self.forwards = tuple(HostForward(p, free_tcp_port()) for p in config.forward_ports)
        self.qmp = QMPClient(state_dir / "qmp.sock")
        self.booted_at: float | None = None
        self._child: pexpect.spawn | None = None
        self._lock = threading.Lock()
        self._log: BinaryIO | None = None
        self._reader: threading.Thread | None = None
        self._stop_reader = threading.Event()
        self._buffer = b""  # console output not yet consumed by a wait
        self.last_match: re.Match[bytes] | None = None
        self.before = b""  # console output before the last match
        self._marker = uuid.uuid4().hex[:12]
        self._count = 0

    # ---- life cycle -------------------------------------------------------------------------
    def host_port(self, guest_port: int) -> int:
        """The 127.0.0.1 port on the host that reaches ``guest_port`` in this machine."""
        for fwd in self.forwards:
            if fwd.guest_port == guest_port:
                return fwd.host_port
        raise KeyError(f"{self.name}: guest port {guest_port} is not forwarded (add it to forward_ports)")

    def _disk_files(self) -> tuple[tuple[Path, str], ...]:
        files = []
        for i, disk in enumerate(self.config.disks):
            if disk.overlay:
                overlay = self.state_dir / f"disk{i}.qcow2"
                if not overlay.exists():
                    subprocess.run(overlay_command(disk.image, disk.image_format, overlay), check=True)
                files.append((overlay, "qcow2"))
            else:
                files.append((disk.image, disk.image_format))
        return tuple(files)

    def command(self) -> list[str]:
        return qemu_command(
            self.config, self.accel, qmp_socket=self.qmp.path, disk_files=self._disk_files(),
            switch=self.switch, forwards=self.forwards,
        )  # fmt: skip

    def reconfigure(self, **changes: object) -> None:
        """Change the machine's config while it is off (e.g. ``cdrom=None, boot_from="disk"``)."""
        if self.is_up():
            raise self._fail("reconfigure needs the machine off")
        self.config = dataclasses.replace(self.config, **changes)  # type: ignore[arg-type]

    def start(self) -> None:
        if self.is_up():
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.console_log.parent.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        (self.state_dir / "qemu-command").write_text(" ".join(cmd) + "\n")
        self._log = self.console_log.open("ab", buffering=0)
        self._log.write(f"\n=== {self.name}: starting QEMU at {time.strftime('%H:%M:%S')} ===\n".encode())
        self._child = pexpect.spawn(cmd[0], cmd[1:], timeout=None, echo=False, maxread=65536)
        self._stop_reader.clear()
        self._reader = threading.Thread(target=self._drain, name=f"console-{self.name}", daemon=True)
        self._reader.start()
        self.qmp.connect(timeout=self.deadline.clamp(60, f"{self.name}'s QMP socket"))
        self.booted_at = time.monotonic()

    def _drain(self) -> None:
        """Move console output into our buffer and the log, whether or not anyone waits."""
        child = self._child
        assert child is not None
        while not self._stop_reader.is_set():
            try:
                data = child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                continue
            except (pexpect.EOF, OSError, ValueError):
                return
            with self._lock:
                if self._log is not None:
                    self._log.write(data)
                self._buffer = (self._buffer + data)[-CONSOLE_BUFFER_MAX:]

    @property
    def pid(self) -> int | None:
        """QEMU's process id while it runs."""
        return self._child.pid if self.is_up() and self._child is not None else None

    def is_up(self) -> bool:
        return self._child is not None and self._child.isalive()

    def wait_for_shutdown(self, timeout: float = 120) -> None:
        """Wait for QEMU to exit (the guest powered off)."""
        try:
            retry(lambda: not self.is_up(), timeout, "QEMU to exit", interval=0.5, deadline=self.deadline)
        except WaitTimeout as exc:
            raise self._fail(str(exc)) from None
        self._cleanup()

    def power_off(self, timeout: float = 120) -> None:
        """Press the ACPI power button over QMP and wait for the guest to power off."""
        self.qmp.command("system_powerdown")
        self.wait_for_shutdown(timeout)

    def crash(self) -> None:
        """Stop QEMU at once (QMP ``quit``, then a kill if it is still there)."""
        if self.is_up():
            try:
                self.qmp.command("quit", timeout=10)
            except (QMPError, OSError):
                pass
        self._cleanup()

    def _cleanup(self) -> None:
        self._stop_reader.set()
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None
        if self._child is not None:
            if self._child.isalive():
                self._child.terminate(force=True)
            self._child.close()
            self._child = None
        self.qmp.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    # ---- QMP --------------------------------------------------------------------------------
    def set_link(self, up: bool, nic: str = "nic-lan") -> None:
        """Plug or cut a NIC's cable (``nic-lan`` on the segment, ``nic-host`` for host ports)."""
        self.qmp.command("set_link", name=nic, up=up)

    def change_medium(self, iso: Path) -> None:
        self.qmp.command("blockdev-change-medium", id="cdrom", filename=str(iso), format="raw")

    def eject(self) -> None:
        self.qmp.command("eject", id="cdrom", force=True)

    # ---- console ----------------------------------------------------------------------------
    def console_tail(self, lines: int = CONSOLE_TAIL_LINES) -> str:
        if not self.console_log.exists():
            return "(no console output)"
        text = self.console_log.read_bytes()[-65536:].decode(errors="replace").replace("\r", "")
        return "\n".join(text.splitlines()[-lines:])

    def _fail(self, message: str) -> MachineError:
        return MachineError(
            f"{self.name}: {message}\n--- last console lines of {self.name} ({self.console_log}) ---\n"
            f"{self.console_tail()}"
        )

    def _expect(self, patterns: list[str | re.Pattern[bytes]], timeout: float, what: str) -> int:
        """Wait (polling the buffer the reader fills) for one of ``patterns``; return its index."""
        try:
            timeout = self.deadline.clamp(timeout, what)
        except WaitTimeout as exc:
            raise self._fail(str(exc)) from None
        end = time.monotonic() + timeout
        compiled = [p if isinstance(p, re.Pattern) else re.compile(p.encode()) for p in patterns]
        while True:
            with self._lock:
                buf = self._buffer
                hits = [(m.end(), i) for i, p in enumerate(compiled) if (m := p.search(buf))]
                if hits:
                    cut, index = min(hits)
                    self.last_match = compiled[index].search(buf)
                    self.before = buf[: self.last_match.start() if self.last_match else 0]
                    self._buffer = buf[cut:]
                    return index
            if not self.is_up() and (self._reader is None or not self._reader.is_alive()):
                raise self._fail(f"QEMU is not running (waiting for {what})")
            if time.monotonic() > end:
                raise self._fail(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.1)

    def wait_for_console_text(self, pattern: str, timeout: float = 300) -> str:
        """Wait for a regular expression on the console; return the matched text."""
        self._expect([pattern], timeout, f"console text {pattern!r}")
        assert self.last_match is not None
        return self.last_match.group(0).decode(errors="replace")

    def send_console(self, text: str) -> None:
        """Type ``text`` on the console as is (add "\\n" to press Enter)."""
        if self._child is None:
            raise self._fail("QEMU is not running")
        data = text.encode()
        step = self.config.console_chunk or len(data) or 1
        for start in range(0, len(data), step):
            self._child.send(data[start : start + step])
            if step < len(data):
                time.sleep(CONSOLE_CHUNK_PAUSE)

    # ---- commands in the guest's console shell ----------------------------------------------
    def execute(self, command: str, timeout: float = 120) -> tuple[int, str]:
        """Run a shell command in the guest; return (exit code, stdout+stderr)."""
        self._count += 1
        tag = f"{self._marker}-{self._count}"
        encoded = base64.b64encode(command.encode()).decode()
        if len(encoded) > MAX_COMMAND_CHARS:
            raise ValueError(
                f"command too long for the serial console ({len(command)} characters): copy a script in instead"
            )
        # the quotes split the markers, so the console's echo of this line never matches them
        line = (
            f"echo 'HB''EGIN-{tag}'; sh -c \"$(echo {encoded} | base64 -d)\" </dev/null 2>&1; "
            f"echo 'HE''ND-{tag}' $?\n"
        )
        self.send_console(line)
        self._expect([f"HBEGIN-{tag}\r*\n"], min(timeout, 60), f"the shell to start command {command!r}")
        self._expect([rf"HEND-{tag} (\d+)\r*\n"], timeout, f"command {command!r} to finish")
        assert self.last_match is not None
        status = int(self.last_match.group(1))
        output = self.before.decode(errors="replace").replace("\r", "")
        return status, output

    def succeed(self, command: str, timeout: float = 120) -> str:
        status, output = self.execute(command, timeout)
        if status != 0:
            raise self._fail(f"command {command!r} failed with exit code {status}:\n{output}")
        return output

    def fail(self, command: str, timeout: float = 120) -> str:
        status, output = self.execute(command, timeout)
        if status == 0:
            raise self._fail(f"command {command!r} succeeded but was expected to fail:\n{output}")
        return output

    def wait_until_succeeds(self, command: str, timeout: float = 120) -> str:
        def attempt() -> str | None:
            status, output = self.execute(command, timeout=min(timeout, 60))
            return output if status == 0 else None

        return retry(attempt, timeout, f"{self.name}: {command!r} to succeed", deadline=self.deadline)

    def wait_until_fails(self, command: str, timeout: float = 120) -> str:
        def attempt() -> str | None:
            status, output = self.execute(command, timeout=min(timeout, 60))
            return output if status != 0 else None

        return retry(attempt, timeout, f"{self.name}: {command!r} to fail", deadline=self.deadline)

    def wait_for_shell(self, timeout: float = 300) -> None:
        """Wait until the console shell answers a command (the guest has booted)."""
        retry(lambda: self.execute("true", timeout=5)[0] == 0, timeout, f"{self.name}'s console shell",
              interval=0.5, deadline=self.deadline)  # fmt: skip
