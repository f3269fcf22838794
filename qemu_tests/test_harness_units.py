"""Pure parts of the harness: addressing, QEMU command lines, overlays, waits, the VDE switch."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from qemu_tests.machine import Disk, MachineConfig, overlay_command, qemu_command, with_tcg_cpu
from qemu_tests.network import HostForward, VdeSwitch, ip_address, mac_address
from qemu_tests.retry import Deadline, WaitTimeout, retry

TCG = ("-accel", "tcg", "-cpu", "qemu64")


def test_addresses_are_deterministic() -> None:
    assert mac_address(1, 1) == "52:54:00:12:01:01"
    assert mac_address(2, 254) == "52:54:00:12:02:fe"
    assert ip_address(1, 3) == "192.168.1.3"
    with pytest.raises(ValueError):
        mac_address(1, 255)
    with pytest.raises(ValueError):
        ip_address(0, 1)


def test_qemu_command_line(tmp_path: Path) -> None:
    config = MachineConfig(name="m", number=7, kernel=Path("/k"), initrd=Path("/i"), append="console=ttyS0",
                           disks=(Disk(Path("/base.raw")),), forward_ports=(22,))  # fmt: skip
    cmd = qemu_command(
        config, TCG, qmp_socket=tmp_path / "q.sock", disk_files=((tmp_path / "d.qcow2", "qcow2"),),
        switch=VdeSwitch(tmp_path / "sw"), forwards=(HostForward(22, 40022),),
    )  # fmt: skip
    line = " ".join(cmd)
    assert cmd[0] == "qemu-system-x86_64"
    assert "-accel tcg -cpu qemu64" in line
    assert f"-qmp unix:{tmp_path}/q.sock,server=on,wait=off" in line
    assert "-kernel /k -append console=ttyS0 -initrd /i" in line
    assert f"if=none,id=disk0,format=qcow2,file={tmp_path}/d.qcow2" in line
    assert f"vde,id=lan,sock={tmp_path}/sw" in line
    assert "e1000,netdev=lan,id=nic-lan,mac=52:54:00:12:01:07" in line
    assert "user,id=host,restrict=on,net=10.0.2.0/24,hostfwd=tcp:127.0.0.1:40022-:22" in line
    assert "ide-cd,drive=cd0,id=cdrom" in line
    assert "-serial stdio" in line


@pytest.mark.parametrize(("boot_from", "disk_index", "cd_index"), [
    ("disk", ",bootindex=1", ""), ("cdrom", ",bootindex=1", ",bootindex=0"),
    ("disk-then-cdrom", ",bootindex=1", ",bootindex=2"),
])  # fmt: skip
def test_boot_order(tmp_path: Path, boot_from: str, disk_index: str, cd_index: str) -> None:
    config = MachineConfig(name="m", number=7, cdrom=Path("/x.iso"), boot_from=boot_from,
                           disks=(Disk(Path("/base.raw")),))  # fmt: skip
    cmd = qemu_command(config, TCG, qmp_socket=tmp_path / "q.sock", disk_files=((tmp_path / "d.qcow2", "qcow2"),),
                       switch=None, forwards=())  # fmt: skip
    assert f"virtio-blk-pci,drive=disk0,id=vd0{disk_index}" in cmd
    assert f"ide-cd,drive=cd0,id=cdrom{cd_index}" in cmd


def test_overlay_keeps_the_backing_file(tmp_path: Path) -> None:
    backing = tmp_path / "base.raw"
    backing.write_bytes(b"x" * 65536)
    overlay = tmp_path / "over.qcow2"
    subprocess.run(overlay_command(backing, "raw", overlay), check=True)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(overlay)],
                                     check=True, capture_output=True, text=True).stdout)  # fmt: skip
    assert info["backing-filename"] == str(backing.resolve())
    assert info["backing-filename-format"] == "raw"


def test_retry_returns_the_first_answer_and_names_the_last_error() -> None:
    calls = iter([None, False, "ok"])
    assert retry(lambda: next(calls), timeout=5, what="x", interval=0.01) == "ok"

    def boom() -> None:
        raise RuntimeError("still broken")

    with pytest.raises(WaitTimeout, match=r"waiting for the thing \(last error: still broken\)"):
        retry(boom, timeout=0.05, what="the thing", interval=0.01)


def test_global_deadline_cuts_waits() -> None:
    assert Deadline(100).clamp(1000, "x") <= 100
    with pytest.raises(WaitTimeout, match="global timeout of 0 s reached before the boot"):
        Deadline(0).clamp(10, "the boot")


def test_vde_switch_starts_and_stops(tmp_path: Path) -> None:
    switch = VdeSwitch(tmp_path / "sw")
    switch.start()
    try:
        assert (tmp_path / "sw" / "ctl").is_socket()
    finally:
        switch.stop()


def test_tcg_cpu_model_is_per_machine_and_kvm_keeps_the_host_cpu() -> None:
    tcg = ("-accel", "tcg", "-cpu", "qemu64")
    assert with_tcg_cpu(tcg, "kvm64") == ("-accel", "tcg", "-cpu", "kvm64")
    assert with_tcg_cpu(tcg, None) == tcg
    assert with_tcg_cpu(("-accel", "kvm", "-cpu", "host"), "kvm64") == ("-accel", "kvm", "-cpu", "host")
