"""Build the tiny test ISO for real (mmdebstrap, squashfs, pycdlib), prove it reproducible, and boot
it under QEMU in all four ways (BIOS/UEFI x CD/USB) to a marker on the serial console."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from appliance.errors import UsageError
from appliance.images.build import build
from appliance.images.config import BuildConfig, default_cache_dir, source_tree
from appliance.images.embed import embed_kickstart
from appliance.images.manifest import sha256_file
from appliance.images.steps import BOOT_MARKER, SOURCE_IGNORE, STEPS
from qemu_tests import accel, bootmodes, serial

EPOCH = 1700000000
BOOT_TIMEOUT = 240.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="image builds run as root (mmdebstrap --mode=root, chroot)"),
]


def _cache_dir() -> Path:
    # shared with `appliance build` so a developer's second run is warm; CI starts cold
    return Path(os.environ.get("APPLIANCE_IMAGE_CACHE") or default_cache_dir())


@pytest.fixture(scope="module")
def source_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the checkout for every build here: the shared work tree may change meanwhile."""
    snap = tmp_path_factory.mktemp("source") / "src"
    shutil.copytree(source_tree(), snap, ignore=SOURCE_IGNORE, symlinks=True)
    return snap


def _config(output: Path, source: Path, **kw: object) -> BuildConfig:
    base = BuildConfig(
        role="test", output_dir=output, cache_dir=_cache_dir(), source_date_epoch=EPOCH, source_dir=source
    )
    return replace(base, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Built:
    iso: Path
    progress: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, source_snapshot: Path) -> Built:
    out = tmp_path_factory.mktemp("iso-a")
    progress = io.StringIO()
    iso = build(_config(out, source_snapshot), out=progress)
    return Built(iso, progress.getvalue())


def test_build_outputs_and_progress(built: Built) -> None:
    out = built.iso.parent
    assert built.iso.name == "appliance-test-0.1.0.iso"
    assert sorted(p.name for p in out.iterdir()) == [
        "appliance-test-0.1.0.iso", "appliance-test-0.1.0.iso.sha256", "appliance-test-0.1.0.manifest.json"
    ]  # fmt: skip
    n = len(STEPS)
    assert f"[1/{n}] check-host" in built.progress and f"[{n}/{n}] publish: done in" in built.progress
    assert "squashfs: done in" in built.progress
    subprocess.run(["sha256sum", "-c", built.iso.name + ".sha256"], cwd=out, check=True, capture_output=True)


def test_manifest_lists_packages_inputs_and_artifacts(built: Built) -> None:
    doc = json.loads((built.iso.parent / "appliance-test-0.1.0.manifest.json").read_text())
    names = {p["name"]: p["version"] for p in doc["packages"]}
    assert {"linux-image-amd64", "live-boot", "systemd", "base-files"} <= set(names)
    assert all(names.values())
    pips = {p["name"]: p["version"] for p in doc["python_packages"]}
    assert pips["appliance"] == "0.1.0" and "pycdlib" in pips
    assert doc["inputs"]["appliance_wheel"]["name"] == "appliance-0.1.0-py3-none-any.whl"
    assert doc["inputs"]["source_date_epoch"] == EPOCH and doc["inputs"]["suite"] == "bookworm"
    assert doc["inputs"]["base"]["key"].startswith("test-")
    assert doc["artifacts"][built.iso.name]["sha256"] == sha256_file(built.iso)
    assert doc["kernel"].endswith("-amd64")


def test_gpt_is_valid_for_strict_tools(built: Built) -> None:
    report = subprocess.run(["xorriso", "-indev", str(built.iso), "-report_system_area", "plain"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "MBR isohybrid" in report and "GPT partition path :   2  /boot/grub/efi.img" in report
    assert "CRC wrong" not in report and "GPT backup problems" not in report
    sg = subprocess.run(["sgdisk", "-v", str(built.iso)], capture_output=True, text=True).stdout
    assert "CRC" not in sg and "GUID" not in sg, sg


def test_two_builds_are_byte_identical(built: Built, source_snapshot: Path, tmp_path: Path) -> None:
    """A second build that bootstraps again (from the cached .debs) gives the same bytes."""
    again = build(_config(tmp_path, source_snapshot, refresh_base=True), out=io.StringIO())
    manifest = "appliance-test-0.1.0.manifest.json"
    first = json.loads((built.iso.parent / manifest).read_text())
    second = json.loads((tmp_path / manifest).read_text())
    assert second["inputs"] == first["inputs"] and second["packages"] == first["packages"]
    assert second["python_packages"] == first["python_packages"]
    assert sha256_file(again) == sha256_file(built.iso)
    assert (tmp_path / manifest).read_bytes() == (built.iso.parent / manifest).read_bytes()


def _boot(iso: Path, mode: bootmodes.BootMode, tmp_path: Path) -> serial.SerialResult:
    vars_copy = tmp_path / "OVMF_VARS.fd"
    shutil.copyfile(bootmodes.OVMF_VARS, vars_copy)
    cmd = bootmodes.boot_command(iso, mode, accel.accel_args(), vars_copy=vars_copy)
    return serial.wait_for_marker(cmd, BOOT_MARKER, BOOT_TIMEOUT, tmp_path / f"serial-{mode.name}.log")


@pytest.mark.e2e
@pytest.mark.parametrize("mode", bootmodes.BOOT_MODES, ids=lambda m: m.name)
def test_boots(built: Built, mode: bootmodes.BootMode, tmp_path: Path) -> None:
    result = _boot(built.iso, mode, tmp_path)
    assert result.found, f"no boot marker within {BOOT_TIMEOUT:.0f} s:\n{result.transcript[-3000:]}"
    assert f"firmware={mode.firmware}" in result.line
    assert ("medium=/dev/sr" if mode.medium == "cd" else "medium=/dev/sd") in result.line
    assert "init_on_alloc=0" in result.line and "inst.auto" not in result.line
    assert "app=appliance=0.1.0_" in result.line  # our package runs from its venv in the image
    assert "kept=yes" in result.line  # the initramfs's programs are held past the switch (docs/images.md)


@pytest.mark.e2e
def test_embedded_kickstart_is_the_default_entry(built: Built, tmp_path: Path) -> None:
    ks = tmp_path / "ks.cfg"
    ks.write_text("# appliance test kickstart\ntext\n")
    out = embed_kickstart(built.iso, ks, tmp_path / "with-ks.iso")
    again = embed_kickstart(built.iso, ks, tmp_path / "with-ks-2.iso")
    assert sha256_file(out) == sha256_file(again)  # embedding is reproducible too
    extracted = tmp_path / "ks.out"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(out), "-extract", "/ks.cfg", str(extracted)],
                   check=True, capture_output=True)  # fmt: skip
    assert extracted.read_text() == ks.read_text()
    report = subprocess.run(["xorriso", "-indev", str(out), "-report_system_area", "plain"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "MBR isohybrid" in report and "CRC wrong" not in report
    result = _boot(out, bootmodes.BootMode("uefi", "cd"), tmp_path)
    assert result.found, result.transcript[-3000:]
    assert "inst.auto ks=cdrom:/ks.cfg" in result.line


def test_unknown_package_stops_cleanly(tmp_path: Path) -> None:
    roles = tmp_path / "roles"
    roles.mkdir()
    (roles / "broken.toml").write_text('packages = ["no-such-package-appliance-test"]\n')
    out = tmp_path / "out"
    cache = tmp_path / "cache"
    with pytest.raises(UsageError, match="no-such-package-appliance-test") as err:
        build(BuildConfig(role="broken", output_dir=out, cache_dir=cache, roles_dir=roles), out=io.StringIO())
    assert err.value.hint and "roles" in err.value.hint
    assert list(out.iterdir()) == []
    assert not list((cache / "base").glob("*")) and list((cache / "work").iterdir()) == []


@pytest.fixture
def offline_netns() -> Iterator[str]:
    """A network namespace with only a (down) loopback: no route to any mirror."""
    name = f"appliance-img-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def test_no_network_gives_a_clear_error(offline_netns: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        ["ip", "netns", "exec", offline_netns, sys.executable, "-m", "appliance", "build", "test",
         "--output", str(out), "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "cannot download packages from the Debian archive" in proc.stderr
    assert "hint:" in proc.stderr
    assert list(out.iterdir()) == []
