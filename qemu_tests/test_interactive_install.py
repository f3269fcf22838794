"""Scenario 1: an interactive install of a server from its ISO, every prompt answered over the
serial console (as a person on an IPMI serial-over-LAN would), then the installed host boots Xen
and its agent listens on 8899."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qemu_tests.artifacts import ArtifactCache, iso_key
from qemu_tests.driver import Driver, results_root
from qemu_tests.isos import build_iso, image_cache
from qemu_tests.lab import SERVER_TCG_CPU, XEN_CONSOLE_CHUNK
from qemu_tests.machine import Disk, Machine, MachineConfig

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]


def server_iso(driver: Driver) -> Path:
    """The server ISO from the lab's input-keyed cache (built now when its inputs changed)."""
    cache = ArtifactCache()
    key = iso_key("server", image_cache())
    cached = cache.iso("server", key)
    if not cached.is_file():
        start = time.monotonic()
        built = build_iso("server", driver.results_dir / "build", driver.results_dir / "build-server.log")
        cached = cache.store_iso("server", key, built)
        driver.record("build server ISO", time.monotonic() - start)
    return cached


@pytest.fixture(scope="module")
def installer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Driver, Machine]]:
    work = tmp_path_factory.mktemp("interactive")
    with Driver(results_root() / "interactive-install", global_timeout=2200) as driver:
        iso = server_iso(driver)
        disk = work / "disk.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "8G"], check=True)
        machine = driver.add_machine(MachineConfig(
            name="server9", number=9, memory_mb=2048, cdrom=iso, boot_from="disk-then-cdrom", tcg_cpu=SERVER_TCG_CPU,
            console_chunk=XEN_CONSOLE_CHUNK,
            disks=(Disk(disk, image_format="qcow2", overlay=False),)))  # fmt: skip
        driver.wait_for_quiet_host()
        yield driver, machine


def answer(machine: Machine, prompt: str, reply: str, timeout: float = 60) -> None:
    machine.wait_for_console_text(prompt, timeout)
    machine.send_console(reply + "\n")


def test_interactive_server_install_over_the_serial_console(installer: tuple[Driver, Machine]) -> None:
    driver, machine = installer
    root_password, agent_password = secrets.token_urlsafe(10), secrets.token_urlsafe(10)
    start = time.monotonic()
    machine.start()
    machine.wait_for_console_text(r"Appliance server installer", 600)
    driver.record("interactive: live boot to the first question", time.monotonic() - start)
    answer(machine, r"Install onto disk \[1\]: ", "1")
    answer(machine, r"Interface \[1\]: ", "1")
    answer(machine, r"Address \[1\]: ", "2")  # static
    answer(machine, r"Address/prefix: ", "192.168.1.9")  # no prefix: asked again
    machine.wait_for_console_text(r"give ADDRESS/PREFIX", 30)
    answer(machine, r"Address/prefix: ", "192.168.1.9/24")
    answer(machine, r"Gateway \[192\.168\.1\.1\]: ", "")
    answer(machine, r"DNS server \[192\.168\.1\.1\]: ", "")
    answer(machine, r"Host name \[server\]: ", "server9.lab")
    answer(machine, r"Time zone \[UTC\]: ", "Etc/UTC")
    answer(machine, r"Root password: ", root_password)
    answer(machine, r"Type it again: ", root_password + "-typo")
    machine.wait_for_console_text(r"the two passwords differ", 30)
    answer(machine, r"Root password: ", root_password)
    answer(machine, r"Type it again: ", root_password)
    answer(machine, r"Agent password .*: ", agent_password)
    answer(machine, r"Type it again: ", agent_password)
    answer(machine, r"Enrol with a manager now .*\[n\]: ", "n")
    plan = machine.wait_for_console_text(r"Type 'yes' to install, anything else to stop \[no\]: ", 120)
    assert "WILL BE ERASED" in plan or "ERASED" in machine.console_tail(30)
    machine.send_console("yes\n")
    machine.wait_for_console_text(r"Install complete on /dev/vda", 900)
    machine.wait_for_console_text(r"reboot in 5 seconds", 60)
    # the CD stays in: the firmware tries the (now installed) disk first, as on a server whose boot
    # order puts the disk before the CD (ejecting it under the running live system broke the reboot)
    driver.record("interactive: live boot + questions + install", time.monotonic() - start)

    start = time.monotonic()
    machine.wait_for_console_text(r"server9 login: ", 900)
    driver.record("interactive: installed server boots (Xen) to its login prompt", time.monotonic() - start)
    machine.send_console("root\n")
    answer(machine, r"Password: ", root_password)
    machine.wait_for_console_text(r"root@server9:~# ", 60)
    assert machine.succeed("cat /sys/hypervisor/type").strip() == "xen"
    machine.wait_until_succeeds("ss -ltn | grep -q ':8899 '", timeout=600)
    driver.record("interactive: the agent listens on 8899 after login", time.monotonic() - start)
    assert "192.168.1.9/24" in machine.succeed("ip -4 -o addr show")
    machine.fail("systemctl is-enabled appliance-installer@ttyS0.service")
