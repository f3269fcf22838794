"""The harness itself, for real: two tiny guests (Debian kernel + busybox initramfs) on one VDE
segment, driven over their serial consoles and QMP. One QEMU run for the whole module."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from qemu_tests.driver import Driver, results_root, wait_for_quiet_host
from qemu_tests.machine import Disk, Machine, MachineConfig, MachineError
from qemu_tests.tinyguest import build_initramfs, tiny_machine

pytestmark = pytest.mark.e2e

BACKING_TEXT = b"BACKING-DATA"


@pytest.fixture(scope="module")
def backing_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("disk") / "backing.raw"
    path.write_bytes(BACKING_TEXT + bytes(1024 * 1024 - len(BACKING_TEXT)))
    return path


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory, backing_disk: Path) -> Iterator[Driver]:
    kernel, initrd = build_initramfs(tmp_path_factory.mktemp("tinyguest"))
    wait_for_quiet_host()
    with Driver(results_root() / "harness", global_timeout=480) as drv:
        a = drv.add_machine(
            tiny_machine(MachineConfig(name="a", number=1, forward_ports=(80,), disks=(Disk(backing_disk),)), kernel, initrd)
        )
        b = drv.add_machine(tiny_machine(MachineConfig(name="b", number=2), kernel, initrd))
        start = time.monotonic()
        a.start()
        b.start()
        a.wait_for_shell(180)
        b.wait_for_shell(180)
        drv.record("tiny guests: start to both shells", time.monotonic() - start)
        yield drv


def machines(driver: Driver) -> tuple[Machine, Machine]:
    return driver.machines["a"], driver.machines["b"]


def test_machines_reach_each_other_on_the_segment(driver: Driver) -> None:
    a, b = machines(driver)
    assert "52:54:00:12:01:01" in a.succeed("cat /sys/class/net/eth0/address")
    assert "1 packets received" in a.succeed("ping -c 1 -W 10 192.168.1.2")
    assert "1 packets received" in b.succeed("ping -c 1 -W 10 192.168.1.1")


def test_exit_codes_and_output_come_back(driver: Driver) -> None:
    a, _ = machines(driver)
    assert a.execute("echo out; echo err >&2; exit 3") == (3, "out\nerr\n")
    assert a.execute("true") == (0, "")
    # quotes, dollars and newlines arrive unchanged (the command travels base64-encoded)
    assert a.succeed("x='a \"b\" $c'\nprintf '%s\\n' \"$x\"") == 'a "b" $c\n'
    with pytest.raises(MachineError, match="exit code 1"):
        a.succeed("false")
    assert "No such file" in a.fail("ls /nonexistent")


def test_failure_shows_the_last_console_lines(driver: Driver) -> None:
    a, _ = machines(driver)
    with pytest.raises(MachineError) as err:
        a.wait_for_console_text("TEXT-THAT-NEVER-COMES", timeout=2)
    message = str(err.value)
    assert "timed out after 2 s" in message
    assert "last console lines of a" in message
    assert "HEND-" in message  # the framing of the commands run before is on the console


def test_host_reaches_a_forwarded_guest_port(driver: Driver) -> None:
    a, _ = machines(driver)
    a.succeed("mkdir -p /www && echo served-by-a > /www/ok.txt && httpd -p 80 -h /www")
    url = f"http://127.0.0.1:{a.host_port(80)}/ok.txt"

    def fetch() -> bytes:
        with urllib.request.urlopen(url, timeout=10) as resp:
            body: bytes = resp.read()
            return body

    deadline = time.monotonic() + 60
    while True:
        try:
            assert fetch() == b"served-by-a\n"
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_disk_writes_go_to_the_overlay(driver: Driver, backing_disk: Path) -> None:
    a, _ = machines(driver)
    assert a.succeed("head -c 12 /dev/vda") == BACKING_TEXT.decode()
    a.succeed("printf CHANGED-BY-A | dd of=/dev/vda conv=notrunc,fsync 2>/dev/null")
    assert a.succeed("echo 3 > /proc/sys/vm/drop_caches; head -c 12 /dev/vda") == "CHANGED-BY-A"
    assert backing_disk.read_bytes().startswith(BACKING_TEXT)
    info = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(a.state_dir / "disk0.qcow2")],
        check=True, capture_output=True, text=True,
    ).stdout)  # fmt: skip
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == str(backing_disk.resolve())


def test_removable_media_over_qmp(driver: Driver, tmp_path: Path) -> None:
    a, _ = machines(driver)
    medium = tmp_path / "medium.iso"
    medium.write_bytes(bytes(2048 * 16))

    def cdrom() -> dict[str, object]:
        devices = a.qmp.command("query-block")
        return next(d for d in devices if d.get("qdev") == "cdrom")

    assert "inserted" not in cdrom()
    a.change_medium(medium)
    inserted = cdrom()["inserted"]
    assert isinstance(inserted, dict) and inserted["file"] == str(medium)
    a.eject()
    assert "inserted" not in cdrom()


def test_cut_link_isolates_a_machine(driver: Driver) -> None:
    a, b = machines(driver)
    b.set_link(False)
    a.fail("ping -c 1 -W 3 192.168.1.2")
    b.set_link(True)
    a.wait_until_succeeds("ping -c 1 -W 3 192.168.1.2", timeout=60)


def test_power_off_over_qmp(driver: Driver) -> None:
    a, b = machines(driver)
    start = time.monotonic()
    b.power_off(timeout=90)
    driver.record("tiny guest: ACPI power-off", time.monotonic() - start)
    assert not b.is_up()
    assert "reboot: Power down" in b.console_log.read_text(errors="replace")
    a.succeed("true")  # the other machine is unaffected
