"""Build manifest (pure): every package and version, the build inputs, each artifact's SHA-256."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_FORMAT = 1


@dataclass
class BuildRecord:
    """Facts the steps collect for the manifest (the one mutable object of a build)."""

    inputs: dict[str, Any] = field(default_factory=dict)
    packages: list[dict[str, str]] = field(default_factory=list)
    python_packages: list[dict[str, str]] = field(default_factory=list)
    kernel_version: str = ""
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # printed, never in the manifest


def parse_dpkg_query(text: str) -> list[dict[str, str]]:
    """Lines of ``dpkg-query -W -f '${Package}\\t${Version}\\t${Architecture}\\n'``, sorted by name."""
    rows = []
    for line in text.splitlines():
        if line.strip():
            name, version, arch = line.split("\t")
            rows.append({"name": name, "version": version, "architecture": arch})
    return sorted(rows, key=lambda r: (r["name"], r["architecture"]))


def parse_pip_list(text: str) -> list[dict[str, str]]:
    rows = [{"name": p["name"], "version": p["version"]} for p in json.loads(text)]
    return sorted(rows, key=lambda r: r["name"].lower())


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fp:
        while block := fp.read(chunk):
            h.update(block)
    return h.hexdigest()


def manifest(role: str, version: str, record: BuildRecord) -> dict[str, Any]:
    """The manifest document; it holds nothing that varies between identical builds."""
    return {
        "format": MANIFEST_FORMAT,
        "role": role,
        "version": version,
        "inputs": record.inputs,
        "kernel": record.kernel_version,
        "packages": record.packages,
        "python_packages": record.python_packages,
        "artifacts": record.artifacts,
    }


def manifest_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def sha256sums(entries: dict[str, str]) -> str:
    """``sha256sum -c`` format: '<hex>  <name>' per line, sorted by name."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(entries.items()))
