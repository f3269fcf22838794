"""Running external programs for the image build: one place that shells out and maps failures."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from appliance.errors import ExternalCommandError

log = logging.getLogger(__name__)

# Minimal, predictable environment for programs (and chroots) we run.
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TZ": "UTC",
    "HOME": "/root",
}


def build_env(extra: Mapping[str, str] | None = None, *, keep: Sequence[str] = ()) -> dict[str, str]:
    env = dict(BASE_ENV)
    for name in keep:
        if name in os.environ:
            env[name] = os.environ[name]
    env.update(extra or {})
    return env


def run(
    cmd: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    what: str | None = None,
    hint: str | None = None,
    log_file: Path | None = None,
) -> str:
    """Run ``cmd``; return its stdout. On failure raise ExternalCommandError with the output's tail.

    With ``log_file`` the combined output goes there (for long, chatty programs like mmdebstrap).
    """
    argv = [str(c) for c in cmd]
    log.debug("run: %s", " ".join(argv))
    try:
        if log_file is not None:
            with open(log_file, "ab") as out:
                returncode = subprocess.run(
                    argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False
                ).returncode
            output = log_file.read_text(errors="replace")
            stdout = ""
        else:
            cp = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
            returncode, output, stdout = cp.returncode, cp.stdout + cp.stderr, cp.stdout
    except FileNotFoundError as err:
        raise ExternalCommandError(f"program not found: {argv[0]}", hint=hint) from err
    if returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        name = what or argv[0]
        raise ExternalCommandError(
            f"{name} failed (exit {returncode}): {' '.join(argv)[:300]}\n{tail}",
            hint=hint or (f"full log: {log_file}" if log_file else None),
        )
    return stdout
