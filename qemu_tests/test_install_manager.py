"""Scenario: an unattended manager install from the real manager ISO with an embedded kickstart,
then the installed host boots from its disk and serves the WS-API, checked from the host.

Phases (timed into results/install-manager/timings.json): build, install (live boot + installer,
until it powers off), boot of the installed disk to the login prompt, checks.
"""

from __future__ import annotations

import secrets
import ssl
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from cryptography import x509

from appliance import pki
from appliance.installer.passwords import sha512_crypt
from qemu_tests.driver import Driver, results_root, wait_for_quiet_host
from qemu_tests.isos import build_iso, embed_kickstart, validate_kickstart
from qemu_tests.machine import Disk, Machine, MachineConfig

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2700)]  # the module fixture builds and installs

HOSTNAME = "manager.lab"
FINGERPRINT_LINE = r"CA fingerprint \(give it to servers' 'enroll --fingerprint'\): (\S+)\r*\n"


def manager_kickstart(root_hash: str, admin_password: str, mgmt_mac: str) -> str:
    """The manager's kickstart: DHCP on the NIC that carries the host's forwarded ports."""
    return "\n".join([
        "lang en_US.UTF-8",
        "keyboard --vckeymap=us",
        "timezone Etc/UTC",
        f"network --bootproto=dhcp --device={mgmt_mac} --hostname={HOSTNAME}",
        f"rootpw --iscrypted {root_hash}",
        "clearpart --all --initlabel",
        "autopart",
        'bootloader --append="console=ttyS0,115200n8"',
        f"manageradmin {admin_password}",
        "poweroff",
        "",
    ])  # fmt: skip


def login_on_console(machine: Machine, password: str, timeout: float = 600) -> None:
    """Log in as root on the serial getty and leave a shell there for ``execute``."""
    machine.wait_for_console_text(r"login: ", timeout)
    machine.send_console("root\n")
    machine.wait_for_console_text(r"Password: ", 60)
    machine.send_console(password + "\n")
    machine.wait_for_console_text(r"root@\S+:~# ", 60)


@pytest.fixture(scope="module")
def installed_manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Driver, Machine, dict[str, str]]]:
    work = tmp_path_factory.mktemp("install-manager")
    results = results_root() / "install-manager"
    results.mkdir(parents=True, exist_ok=True)
    root_password = secrets.token_urlsafe(12)
    secrets_ = {"root": root_password, "admin": secrets.token_urlsafe(12)}

    with Driver(results, global_timeout=2400) as driver:
        start = time.monotonic()
        iso = build_iso("manager", work / "iso", results / "build.log")
        driver.record("build manager ISO", time.monotonic() - start)

        config = MachineConfig(name="manager", number=1, memory_mb=1536, forward_ports=(7002,),
                               boot_from="cdrom", cdrom=work / "auto.iso",
                               disks=(Disk(work / "disk.qcow2", image_format="qcow2", overlay=False),))  # fmt: skip
        kickstart = work / "manager.ks"
        kickstart.write_text(manager_kickstart(sha512_crypt(root_password), secrets_["admin"], config.host_mac))
        validate_kickstart("manager", kickstart)
        embed_kickstart(iso, kickstart, work / "auto.iso")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(work / "disk.qcow2"), "8G"], check=True)

        machine = driver.add_machine(config)
        wait_for_quiet_host()
        start = time.monotonic()
        machine.start()
        line = machine.wait_for_console_text(FINGERPRINT_LINE, timeout=1500)
        secrets_["fingerprint"] = line.split(": ", 1)[1].strip()
        machine.wait_for_shutdown(timeout=300)
        driver.record("install manager (live boot + installer, to power-off)", time.monotonic() - start)

        machine.reconfigure(cdrom=None, boot_from="disk")
        start = time.monotonic()
        machine.start()
        login_on_console(machine, root_password, timeout=600)
        driver.record("boot installed manager to a root shell on ttyS0", time.monotonic() - start)
        yield driver, machine, secrets_


def test_the_manager_serves_its_api_with_the_installed_ca(installed_manager: tuple[Driver, Machine, dict[str, str]]) -> None:
    driver, machine, secrets_ = installed_manager
    base = f"https://127.0.0.1:{machine.host_port(7002)}/api/v1"
    start = time.monotonic()
    machine.wait_until_succeeds("systemctl is-active appliance-manager.service", timeout=300)
    with httpx.Client(verify=False, timeout=30) as client:  # the CA is checked by its fingerprint below
        deadline = time.monotonic() + 300
        while True:
            try:
                ca = client.get(f"{base}/ca")
                if ca.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the WS-API never answered on 7002"
            time.sleep(3)
    driver.record("installed manager: first WS-API answer after login", time.monotonic() - start)
    pem = ca.json()["certificate_pem"]
    # the CA served on 7002 is the one whose fingerprint the installer printed
    assert pki.fingerprint(x509.load_pem_x509_certificate(pem.encode())) == pki.normalise_fingerprint(secrets_["fingerprint"])

    context = ssl.create_default_context(cadata=pem)
    context.check_hostname = False  # reached through a forwarded loopback port; the chain is still verified
    with httpx.Client(verify=context, timeout=30) as client:
        assert client.get(f"{base}/health").status_code == 200
        me = client.get(f"{base}/me", auth=("admin", secrets_["admin"]))
        assert me.status_code == 200, me.text
        assert client.get(f"{base}/me", auth=("admin", "wrong-password")).status_code == 401


def test_installed_host_services_and_identity(installed_manager: tuple[Driver, Machine, dict[str, str]]) -> None:
    _, machine, _ = installed_manager
    assert machine.succeed("hostname").strip() in (HOSTNAME, HOSTNAME.split(".")[0])
    machine.succeed("systemctl is-active mariadb.service")
    assert "/var/lib/mysql" in machine.succeed("findmnt -n -o TARGET /var/lib/mysql")
    machine.succeed("test -s /etc/ssh/ssh_host_ed25519_key")
    assert machine.succeed("cat /etc/machine-id").strip() != ""
    machine.fail("systemctl is-enabled appliance-installer@ttyS0.service")
