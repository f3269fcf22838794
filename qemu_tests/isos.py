"""Installable ISOs for scenarios: built with `appliance build` (its cache makes rebuilds quick)
and given a kickstart with `appliance iso embed-ks`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from appliance.errors import ExternalCommandError

STEP_DONE = re.compile(r"\[\d+/\d+\] [\w-]+: done")


def appliance_command() -> list[str]:
    """The `appliance` CLI of this checkout (the venv's script next to the running Python)."""
    script = Path(sys.executable).parent / "appliance"
    return [str(script)] if script.exists() else [sys.executable, "-m", "appliance.cli"]


def image_cache() -> Path | None:
    """``APPLIANCE_IMAGE_CACHE`` (as the image tests use), else the build's default cache."""
    value = os.environ.get("APPLIANCE_IMAGE_CACHE")
    return Path(value) if value else None


def build_iso(role: str, output: Path, log: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Build ``role``'s ISO into ``output`` (its output goes to ``log``, and each finished step to
    ``progress``); returns the ISO's path."""
    cmd = [*appliance_command(), "build", role, "--output", str(output)]
    cache = image_cache()
    if cache is not None:
        cmd += ["--cache", str(cache)]
    with log.open("w") as out, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                text=True) as proc:  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            out.flush()
            if progress is not None and STEP_DONE.match(line):
                progress(f"  {role} ISO: {line.strip()}")
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise ExternalCommandError(f"appliance build {role} failed (exit {proc.returncode}):\n{tail}",
                                   f"full log: {log}")  # fmt: skip
    isos = sorted(output.glob(f"appliance-{role}-*.iso"))
    if len(isos) != 1:
        raise ExternalCommandError(f"appliance build {role} left {len(isos)} ISOs in {output}", "clean the folder")
    return isos[0]


def validate_kickstart(role: str, kickstart: Path) -> None:
    cmd = [*appliance_command(), "ks", "validate", "--role", role, str(kickstart)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ExternalCommandError(f"kickstart {kickstart} is not valid:\n{proc.stdout}{proc.stderr}")


def embed_kickstart(iso: Path, kickstart: Path, output: Path) -> Path:
    cmd = [*appliance_command(), "iso", "embed-ks", str(iso), str(kickstart), "-o", str(output)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ExternalCommandError(f"embed-ks failed:\n{proc.stdout}{proc.stderr}")
    return output
