"""Manifest and checksum formats (pure)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from appliance.images.manifest import (
    BuildRecord,
    manifest,
    manifest_json,
    parse_dpkg_query,
    parse_pip_list,
    sha256_file,
    sha256sums,
)
from appliance.images.steps import wheel_requirements


def test_dpkg_and_pip_listings_are_sorted() -> None:
    rows = parse_dpkg_query("zlib1g\t1:1.2.13\tamd64\nbash\t5.2.15-2+b7\tamd64\n\n")
    assert [r["name"] for r in rows] == ["bash", "zlib1g"]
    assert rows[1] == {"name": "zlib1g", "version": "1:1.2.13", "architecture": "amd64"}
    pips = parse_pip_list(json.dumps([{"name": "Jinja2", "version": "3.1"}, {"name": "appliance", "version": "1"}]))
    assert [p["name"] for p in pips] == ["appliance", "Jinja2"]


def test_manifest_leaves_out_timings() -> None:
    rec = BuildRecord(inputs={"suite": "bookworm"}, kernel_version="6.1")
    rec.timings["squashfs"] = 3.2
    rec.artifacts["a.iso"] = {"sha256": "00", "size": 1}
    doc = manifest("server", "1.0", rec)
    assert doc["role"] == "server" and doc["kernel"] == "6.1" and doc["artifacts"]["a.iso"]["sha256"] == "00"
    assert "timings" not in manifest_json(doc) and "3.2" not in manifest_json(doc)


def test_sha256sums_verify_with_coreutils(tmp_path: Path) -> None:
    (tmp_path / "a.iso").write_bytes(b"iso")
    (tmp_path / "m.json").write_text("{}")
    sums = sha256sums({n: sha256_file(tmp_path / n) for n in ("m.json", "a.iso")})
    assert sums.splitlines()[0].endswith("  a.iso")
    (tmp_path / "x.sha256").write_text(sums)
    subprocess.run(["sha256sum", "-c", "x.sha256"], cwd=tmp_path, check=True, capture_output=True)


def test_wheel_requirements_skip_extras(tmp_path: Path) -> None:
    import zipfile

    whl = tmp_path / "appliance-1-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr(
            "appliance-1.dist-info/METADATA",
            "Name: appliance\nRequires-Dist: jinja2>=3.1\nRequires-Dist: pytest>=8; extra == \"test\"\n",
        )
    assert wheel_requirements(whl) == ["jinja2>=3.1"]

