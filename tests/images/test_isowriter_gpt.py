"""The pycdlib writer and the GPT fix, on small real hybrid ISOs checked by xorriso and sgdisk."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pycdlib.headervd

from appliance.images import gpt
from appliance.images.isowriter import IsoLayout, iso9660_path, pinned_clock, write_iso
from appliance.images.steps import normalise_and_check_gpt

LAYOUT = IsoLayout(volume_id="APPLIANCE_T", epoch=1700000000, seed="APPLIANCE_T:1700000000")


def _tree(root: Path) -> Path:
    (root / "isolinux").mkdir(parents=True)
    (root / "boot/grub").mkdir(parents=True)
    (root / "live").mkdir()
    shutil.copyfile("/usr/lib/ISOLINUX/isolinux.bin", root / "isolinux/isolinux.bin")
    (root / "boot/grub/efi.img").write_bytes(b"\0" * (1 << 20))
    (root / "live/filesystem.squashfs").write_bytes(b"x" * 5000)
    (root / ".disk").mkdir()
    (root / ".disk/info").write_text("t\n")
    return root


def _xorriso_report(iso: Path) -> str:
    out = subprocess.run(["xorriso", "-indev", str(iso), "-report_system_area", "plain"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return out.stdout + out.stderr


def _sgdisk(iso: Path) -> str:
    return subprocess.run(["sgdisk", "-v", str(iso)], capture_output=True, text=True).stdout


def test_pycdlib_gpt_is_broken_and_we_fix_it(tmp_path: Path) -> None:
    iso = tmp_path / "t.iso"
    write_iso(_tree(tmp_path / "tree"), iso, LAYOUT)
    with open(iso, "rb") as fp:
        raw = gpt.check(fp)
    # pycdlib's own GPT: wrong partition-array CRCs (the bug this step exists for)
    assert "primary partition array CRC is wrong" in raw.problems
    assert "CRC wrong" in _xorriso_report(iso)
    normalise_and_check_gpt(iso, LAYOUT.seed)
    with open(iso, "rb") as fp:
        fixed = gpt.check(fp)
    assert fixed.primary_ok and fixed.backup_ok and fixed.problems == ()
    report = _xorriso_report(iso)
    assert "CRC wrong" not in report and "GPT backup problems" not in report
    assert "MBR isohybrid" in report and "GPT" in report
    sg = _sgdisk(iso)
    assert "CRC" not in sg and "GUID" not in sg, sg


def test_writer_is_reproducible_whatever_the_clock_and_zone(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    a, b = tmp_path / "a.iso", tmp_path / "b.iso"
    write_iso(tree, a, LAYOUT)
    normalise_and_check_gpt(a, LAYOUT.seed)
    time.sleep(1.1)  # a different wall clock second
    write_iso(tree, b, LAYOUT)
    normalise_and_check_gpt(b, LAYOUT.seed)
    assert a.read_bytes() == b.read_bytes()
    c = tmp_path / "c.iso"
    write_iso(tree, c, IsoLayout("APPLIANCE_T", 1700000001, "other-seed"))
    assert c.read_bytes() != a.read_bytes()


def test_iso_contents_readable_by_name(tmp_path: Path) -> None:
    iso = tmp_path / "t.iso"
    write_iso(_tree(tmp_path / "tree"), iso, LAYOUT)
    listing = subprocess.run(["xorriso", "-indev", str(iso), "-find", "/", "-type", "f"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    for name in ("/live/filesystem.squashfs", "/isolinux/isolinux.bin", "/boot/grub/efi.img", "/.disk/info"):
        assert f"'{name}'" in listing


def test_clock_is_restored() -> None:
    with pinned_clock(5):
        assert pycdlib.headervd.time.time() == 5.0
    assert pycdlib.headervd.time.time() > 1e9


def test_iso9660_names() -> None:
    assert iso9660_path("/live/filesystem.squashfs", False) == "/LIVE/FILESYSTEM.SQUASHFS;1"
    assert iso9660_path("/live/vmlinuz", False) == "/LIVE/VMLINUZ.;1"
    assert iso9660_path("/.disk", True) == "/_DISK"
    assert iso9660_path("/boot/grub/grub.cfg", False) == "/BOOT/GRUB/GRUB.CFG;1"


def test_guid_derivation_is_stable_and_distinct() -> None:
    assert gpt.derived_guid("s", "disk") == gpt.derived_guid("s", "disk")
    assert gpt.derived_guid("s", "disk") != gpt.derived_guid("s", "partition-0")
    assert len(gpt.derived_guid("s", "disk")) == 16
