"""Input-keyed cache of lab artifacts outside the repo: built ISOs and installed disk sets.

An ISO's key hashes what goes into it (our package's source, the role specs and templates, the
cached Debian base's key); a disk set's key hashes its ISOs' keys and the kickstarts' format. A
rerun with nothing changed reuses both and goes straight to booting the lab.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from appliance.images.cache import base_key
from appliance.images.config import BuildConfig, default_cache_dir, source_tree
from appliance.images.spec import load_role

SOURCE_FILES = ("pyproject.toml", "README.md")
SOURCE_DIRS = ("appliance",)
KEEP_PER_KIND = 2  # older entries of the same kind are pruned


def lab_cache_dir() -> Path:
    """``APPLIANCE_LAB_CACHE`` or ~/.cache/appliance/lab."""
    value = os.environ.get("APPLIANCE_LAB_CACHE")
    return Path(value) if value else default_cache_dir() / "lab"


def source_digest(root: Path) -> str:
    """SHA-256 over the files that make our wheel (paths and contents, in a fixed order)."""
    digest = hashlib.sha256()
    files = [root / name for name in SOURCE_FILES if (root / name).is_file()]
    for top in SOURCE_DIRS:
        files += [p for p in (root / top).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def key_of(inputs: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def iso_key(role: str, image_cache: Path | None = None, source: Path | None = None) -> str:
    root = source or source_tree()
    config = BuildConfig(role=role, output_dir=Path("."), cache_dir=image_cache or default_cache_dir(),
                         source_date_epoch=_epoch())  # fmt: skip
    return key_of({"role": role, "source": source_digest(root), "base": base_key(load_role(role), config)})


def _epoch() -> int | None:
    value = os.environ.get("SOURCE_DATE_EPOCH")
    return int(value) if value and value.isdigit() else None


class ArtifactCache:
    """``root/isos/ROLE-KEY.iso`` and ``root/disks/NAME-KEY/`` (a finished set only: written
    under a temporary name and renamed when complete)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or lab_cache_dir()

    def iso(self, role: str, key: str) -> Path:
        return self.root / "isos" / f"{role}-{key}.iso"

    def store_iso(self, role: str, key: str, built: Path) -> Path:
        target = self.iso(role, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        shutil.copyfile(built, partial)
        partial.rename(target)
        self._prune(target.parent, f"{role}-", keep=target)
        return target

    def disks(self, name: str, key: str) -> Path:
        return self.root / "disks" / f"{name}-{key}"

    def staging(self, name: str, key: str) -> Path:
        """An empty folder to install into; ``commit_disks`` publishes it."""
        path = self.root / "disks" / f".{name}-{key}.partial"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def commit_disks(self, staging: Path, name: str, key: str) -> Path:
        target = self.disks(name, key)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        self._prune(target.parent, f"{name}-", keep=target)
        return target

    @staticmethod
    def _prune(folder: Path, prefix: str, keep: Path) -> None:
        entries = sorted((p for p in folder.glob(f"{prefix}*") if p != keep and not p.name.endswith(".partial")),
                         key=lambda p: p.stat().st_mtime, reverse=True)  # fmt: skip
        for old in entries[KEEP_PER_KIND - 1 :]:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
