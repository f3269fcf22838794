"""A whole lab in nested QEMU: a manager and N Xen servers installed from the ISOs with kickstarts,
the servers enrolling with the manager at install time; used by `appliance lab` and the e2e tests.

    with Driver(results) as driver:
        lab = Lab(LabConfig(workdir=Path("lab")), driver)
        lab.up()            # ISOs and installed disks from the cache, or built/installed now
        lab.api_client()    # httpx client for the WS-API, CA verified

Phases: ISOs (built, or taken from the input-keyed cache), installs (a disk set, likewise), then
every host boots from a qcow2 overlay on the cached set, so the cache is never written by a run.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from appliance import pki
from appliance.installer.passwords import sha512_crypt
from qemu_tests.artifacts import ArtifactCache, iso_key, key_of
from qemu_tests.driver import Driver
from qemu_tests.isos import build_iso, embed_kickstart, image_cache, validate_kickstart
from qemu_tests.kickstarts import KICKSTART_FORMAT, HostKickstart, manager_kickstart, server_kickstart
from qemu_tests.machine import Disk, Machine, MachineConfig
from qemu_tests.retry import retry

FINGERPRINT_LINE = r"CA fingerprint \(give it to servers' 'enroll --fingerprint'\): (\S+)\r*\n"
INSTALL_DONE = r"Install complete on \S+"
DISK_SIZE = "8G"
MANAGER_PORTS = (22, 7002, 10000)
SERVER_PORTS = (22, 8899)
SERVER_TCG_CPU = "kvm64"  # an Intel model: see MachineConfig.tcg_cpu
XEN_CONSOLE_CHUNK = 8  # typing on a Xen host's serial console: see MachineConfig.console_chunk


INSTALL_STEP = re.compile(r"\[\d+/\d+ +\d+%\] [^\r\n]+")


class InstallProgress:
    """Echo the installers' step lines ("[5/11  10%] Copying the system") from the consoles' logs."""

    def __init__(self, machines: list[Machine], say: Callable[[str], None]) -> None:
        self.machines, self.say = machines, say
        self.offsets = {m.name: m.console_log.stat().st_size if m.console_log.exists() else 0 for m in machines}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(2):
            for m in self.machines:
                if not m.console_log.exists():
                    continue
                with m.console_log.open("rb") as log:
                    log.seek(self.offsets[m.name])
                    chunk = log.read()
                cut = chunk.rfind(b"\n") + 1  # whole lines only
                self.offsets[m.name] += cut
                for step in INSTALL_STEP.findall(chunk[:cut].decode(errors="replace")):
                    self.say(f"  {m.name}: {step.strip()}")

    def __enter__(self) -> InstallProgress:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


@dataclass(frozen=True)
class LabConfig:
    workdir: Path  # ISOs with kickstarts, overlays' notes, lab.json, the SSH key
    servers: int = 2
    cache: Path | None = None  # default: artifacts.lab_cache_dir()
    manager_memory_mb: int = 1536
    server_memory_mb: int = 2048
    install_timeout: float = 1500
    boot_timeout: float = 900


@dataclass(frozen=True)
class LabSecrets:
    """What the installs were given; kept with the cached disk set (it is the set's identity)."""

    root_password: str
    admin_password: str
    agent_password: str
    ssh_private_key: str  # OpenSSH PEM of root's key on every host
    ssh_public_key: str
    fingerprint: str = ""  # the manager CA's, as its installer printed it

    @classmethod
    def generate(cls) -> LabSecrets:
        key = ed25519.Ed25519PrivateKey.generate()
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption()).decode()  # fmt: skip
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()  # fmt: skip
        return cls(secrets.token_urlsafe(12), secrets.token_urlsafe(12), secrets.token_urlsafe(12),
                   private, f"{public} appliance-lab")  # fmt: skip


def contact_after(stamp: object, since: dt.datetime) -> bool:
    """An API time stamp (ISO 8601, ``Z``) later than ``since``."""
    if not isinstance(stamp, str) or not stamp:
        return False
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")) > since


def server_name(n: int) -> str:
    return f"server{n}"


@dataclass
class Lab:
    config: LabConfig
    driver: Driver
    say: Callable[[str], None] = print
    cache: ArtifactCache = field(init=False)
    secrets: LabSecrets | None = None
    isos: dict[str, Path] = field(default_factory=dict)
    machines: dict[str, Machine] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cache = ArtifactCache(self.config.cache)
        self.config.workdir.mkdir(parents=True, exist_ok=True)

    # -- machines ---------------------------------------------------------------------------

    def _machine(self, name: str, number: int, memory: int, ports: tuple[int, ...], disk: Disk,
                 cpu: str | None = None) -> Machine:  # fmt: skip
        if name in self.machines:
            self.machines[name].reconfigure(disks=(disk,), cdrom=None, boot_from="disk")
            return self.machines[name]
        config = MachineConfig(name=name, number=number, memory_mb=memory, forward_ports=ports, disks=(disk,),
                               tcg_cpu=cpu, console_chunk=XEN_CONSOLE_CHUNK if cpu else None)  # fmt: skip
        self.machines[name] = self.driver.add_machine(config)
        return self.machines[name]

    def _add_hosts(self, disk_dir: Path, overlay: bool) -> None:
        def disk(name: str) -> Disk:
            return Disk(disk_dir / f"{name}.qcow2", image_format="qcow2", overlay=overlay)

        self._machine("manager", 1, self.config.manager_memory_mb, MANAGER_PORTS, disk("manager"))
        for n in range(1, self.config.servers + 1):
            self._machine(server_name(n), 1 + n, self.config.server_memory_mb, SERVER_PORTS, disk(server_name(n)),
                          cpu=SERVER_TCG_CPU)  # fmt: skip

    @property
    def manager(self) -> Machine:
        return self.machines["manager"]

    def servers(self) -> list[Machine]:
        return [self.machines[server_name(n)] for n in range(1, self.config.servers + 1)]

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.manager.host_port(7002)}/api/v1"

    # -- phases -----------------------------------------------------------------------------

    def up(self) -> None:
        """ISOs, installed disks and a booted lab whose servers report to the manager."""
        self.prepare_isos()
        disk_dir = self.prepare_disks()
        self.boot(disk_dir)

    def _timed(self, phase: str, start: float) -> None:
        seconds = time.monotonic() - start
        self.driver.record(phase, seconds)
        self.say(f"lab: {phase}: {seconds:.0f} s")

    def prepare_isos(self) -> dict[str, Path]:
        for role in ("manager", "server"):
            key = iso_key(role, image_cache())
            cached = self.cache.iso(role, key)
            if cached.is_file():
                self.say(f"lab: {role} ISO unchanged, reusing {cached}")
            else:
                self.say(f"lab: building the {role} ISO (appliance build {role}) ...")
                start = time.monotonic()
                out = self.config.workdir / "build" / role
                shutil.rmtree(out, ignore_errors=True)
                built = build_iso(role, out, self.driver.results_dir / f"build-{role}.log", self.say)
                cached = self.cache.store_iso(role, key, built)
                shutil.rmtree(out, ignore_errors=True)
                self._timed(f"build {role} ISO", start)
            self.isos[role] = cached
        return self.isos

    def disk_set_key(self) -> str:
        return key_of({
            "isos": sorted(p.name for p in self.isos.values()), "kickstarts": KICKSTART_FORMAT,
            "servers": self.config.servers, "memory": [self.config.manager_memory_mb, self.config.server_memory_mb],
        })  # fmt: skip

    def prepare_disks(self) -> Path:
        key = self.disk_set_key()
        cached = self.cache.disks("lab", key)
        if (cached / "lab.json").is_file():
            self.secrets = LabSecrets(**json.loads((cached / "lab.json").read_text()))
            self.say(f"lab: installed disks unchanged, reusing {cached}")
            return cached
        staging = self.cache.staging("lab", key)
        self.secrets = LabSecrets.generate()
        self._save_secrets(staging)  # first: a failed install can still be logged into
        self._install_all(staging)
        self._save_secrets(staging)  # now with the CA fingerprint
        return self.cache.commit_disks(staging, "lab", key)

    def _save_secrets(self, folder: Path) -> None:
        assert self.secrets is not None
        path = folder / "lab.json"
        path.write_text(json.dumps(asdict(self.secrets), indent=2) + "\n")
        path.chmod(0o600)

    def _host(self, machine: Machine, hostname: str) -> HostKickstart:
        assert self.secrets is not None
        return HostKickstart(hostname=hostname, mac=machine.config.mac, ip=machine.config.ip,
                             root_hash=sha512_crypt(self.secrets.root_password),
                             ssh_public_key=self.secrets.ssh_public_key)  # fmt: skip

    def _with_kickstart(self, machine: Machine, role: str, text: str) -> Path:
        ks = self.config.workdir / f"{machine.name}.ks"
        ks.write_text(text)
        ks.chmod(0o600)
        validate_kickstart(role, ks)
        return embed_kickstart(self.isos[role], ks, self.config.workdir / f"{machine.name}-auto.iso")

    def _install_all(self, staging: Path) -> None:
        assert self.secrets is not None
        for name in ["manager", *(server_name(n) for n in range(1, self.config.servers + 1))]:
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(staging / f"{name}.qcow2"), DISK_SIZE],
                           check=True)  # fmt: skip
        self._add_hosts(staging, overlay=False)
        manager = self.manager
        admin = self.secrets.admin_password
        auto = self._with_kickstart(
            manager, "manager", manager_kickstart(self._host(manager, "manager.lab"), admin)
        )
        self.say("lab: installing the manager (unattended, from its ISO) ...")
        self.driver.wait_for_quiet_host()
        start = time.monotonic()
        manager.reconfigure(cdrom=auto, boot_from="cdrom")
        with InstallProgress([manager], self.say):
            manager.start()
            line = manager.wait_for_console_text(FINGERPRINT_LINE, self.config.install_timeout)
            fingerprint = line.split(": ", 1)[1].strip()
            manager.wait_for_console_text(INSTALL_DONE, 300)
            manager.wait_for_shutdown(300)
        self._timed("install manager", start)
        self.secrets = LabSecrets(**{**asdict(self.secrets), "fingerprint": fingerprint})

        start = time.monotonic()
        manager.reconfigure(cdrom=None, boot_from="disk")
        manager.start()
        self.wait_for_api()
        self._timed("boot installed manager to its WS-API", start)
        with self.api_client() as client:
            made = client.post(f"{self.api_url}/enrollment-tokens",
                               json={"ttl_seconds": 7200, "uses": self.config.servers})  # fmt: skip
            made.raise_for_status()
            token = made.json()["token"]

        start = time.monotonic()
        self.say(f"lab: installing {self.config.servers} server(s), enrolling with the manager ...")
        agent_hash = sha512_crypt(self.secrets.agent_password)
        for server in self.servers():
            text = server_kickstart(self._host(server, f"{server.name}.lab"), agent_hash,
                                    f"https://{manager.config.ip}:7002", fingerprint, token)  # fmt: skip
            server.reconfigure(cdrom=self._with_kickstart(server, "server", text), boot_from="cdrom")
            server.start()
        with InstallProgress(self.servers(), self.say):
            for server in self.servers():
                server.wait_for_console_text(INSTALL_DONE, self.config.install_timeout)
                server.wait_for_shutdown(300)
        self._timed(f"install {self.config.servers} server(s) at once", start)
        self.shut_down(manager)

    def shut_down(self, machine: Machine) -> None:
        """ACPI power button; if the guest ignores it, `poweroff` over SSH (never a hard stop here:
        the disk goes into the cache)."""
        try:
            machine.power_off(120)
        except AssertionError:
            self.say(f"lab: {machine.name} ignored the power button; running poweroff over SSH")
            self.ssh(machine, "poweroff", check=False)
            machine.wait_for_shutdown(180)

    def _ssh_options(self) -> list[str]:
        return ["-i", str(self.write_ssh_key()), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20"]  # fmt: skip

    def copy_to(self, machine: Machine, local: Path, remote: str) -> None:
        """scp ``local`` to ``remote`` on ``machine`` (as root)."""
        cmd = ["scp", "-P", str(machine.host_port(22)), *self._ssh_options(), str(local), f"root@127.0.0.1:{remote}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise AssertionError(f"scp to {machine.name}:{remote}: exit {proc.returncode}: {proc.stderr.strip()}")

    def ssh(self, machine: Machine, command: str, check: bool = True) -> str:
        """Run ``command`` as root on ``machine`` over its forwarded SSH port."""
        cmd = ["ssh", "-p", str(machine.host_port(22)), *self._ssh_options(), "root@127.0.0.1", command]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"ssh {machine.name} {command!r}: exit {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout

    def boot(self, disk_dir: Path) -> None:
        """Start every host on an overlay over ``disk_dir``; wait for the WS-API and the agents."""
        self._add_hosts(disk_dir, overlay=True)
        self.driver.wait_for_quiet_host()
        start = time.monotonic()
        booted = dt.datetime.now(dt.UTC)
        self.say("lab: booting the manager and the servers ...")
        for machine in self.machines.values():
            machine.start()
        self.wait_for_api()
        self._timed("boot: manager WS-API answers", start)
        self.wait_for_servers("owned", since=booted)
        self._timed("boot: every server's agent reports to the manager", start)

    # -- the manager's API ------------------------------------------------------------------

    def _ca_pem(self) -> str:
        with httpx.Client(verify=False, timeout=15) as client:  # the CA is checked by its fingerprint below
            pem = client.get(f"{self.api_url}/ca").json()["certificate_pem"]
        assert self.secrets is not None
        got = pki.fingerprint(x509.load_pem_x509_certificate(pem.encode()))
        if got != pki.normalise_fingerprint(self.secrets.fingerprint):
            raise AssertionError(f"the manager serves CA {got}, not the installed {self.secrets.fingerprint}")
        return str(pem)

    def wait_for_api(self) -> None:
        def attempt() -> bool:
            with httpx.Client(verify=False, timeout=10) as client:
                return client.get(f"{self.api_url}/health").status_code == 200

        retry(attempt, timeout=self.config.boot_timeout, what="the manager's WS-API /health", interval=3,
              deadline=self.driver.deadline)  # fmt: skip

    def api_client(self) -> httpx.Client:
        """WS-API client as admin; the CA is the one the installer printed."""
        assert self.secrets is not None
        context = ssl.create_default_context(cadata=self._ca_pem())
        context.check_hostname = False  # reached through a forwarded loopback port; the chain is verified
        return httpx.Client(base_url=self.api_url, verify=context, timeout=30,
                            auth=("admin", self.secrets.admin_password))

    def wait_for_servers(self, state: str, since: dt.datetime, timeout: float | None = None) -> list[dict[str, object]]:
        """Wait until the manager lists every lab server in ``state`` with an agent contact after
        ``since`` (the manager's database may still say ``owned`` from before the boot)."""
        names = {s.name for s in self.servers()}

        def attempt() -> list[dict[str, object]] | None:
            with self.api_client() as client:
                items = client.get(f"{self.api_url}/servers").json()["items"]
            ours = [s for s in items if str(s["name"]).split(".")[0] in names]
            ready = [s for s in ours if s["state"] == state and contact_after(s.get("last_contact_at"), since)]
            return ours if len(ready) == len(names) else None

        return retry(attempt, timeout=timeout or self.config.boot_timeout, interval=10,
                     what=f"every server {state} on the manager", deadline=self.driver.deadline)  # fmt: skip

    def write_ssh_key(self) -> Path:
        assert self.secrets is not None
        path = self.config.workdir / "id_ed25519"
        path.write_text(self.secrets.ssh_private_key)
        path.chmod(0o600)
        return path
