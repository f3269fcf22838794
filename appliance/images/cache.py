"""The build cache (default ~/.cache/appliance): bootstrapped bases, downloaded .debs, PyPI wheels."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from appliance.images.config import BuildConfig
from appliance.images.spec import RoleSpec

BASE_FORMAT = 1  # bump when the bootstrap command changes in a way that changes its output


def base_inputs(spec: RoleSpec, config: BuildConfig) -> dict[str, Any]:
    """Everything the bootstrapped base tarball depends on."""
    return {
        "format": BASE_FORMAT,
        "suite": config.suite,
        "sources": config.apt_sources,
        "architecture": "amd64",
        # the base's internal timestamps (e.g. in the initrd) follow SOURCE_DATE_EPOCH when set
        "source_date_epoch": config.source_date_epoch,
        **spec.bootstrap_inputs(),
    }


def base_key(spec: RoleSpec, config: BuildConfig) -> str:
    blob = json.dumps(base_inputs(spec, config), sort_keys=True).encode()
    return f"{spec.name}-{hashlib.sha256(blob).hexdigest()[:16]}"


def base_tarball(cache_dir: Path, key: str) -> Path:
    return cache_dir / "base" / f"{key}.tar"
