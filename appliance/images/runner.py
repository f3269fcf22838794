"""Running external programs for the image build: one place that shells out and maps failures."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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


CLEANUP_WAIT_S = 120.0


def _wait(proc: subprocess.Popen[Any]) -> tuple[int, tuple[Any, Any]]:
    """Wait for ``proc``; if we are interrupted meanwhile, let it clean up before we go on.

    A stopped build must not leave mmdebstrap's mounts behind: the program gets SIGTERM (Ctrl-C
    reaches it with the process group, `kill` of our PID does not) and time to unmount.
    """
    with proc:
        try:
            out = proc.communicate()
        except BaseException:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.communicate(timeout=CLEANUP_WAIT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
            raise
        return proc.returncode, out


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
                returncode, _ = _wait(subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT))
            output = log_file.read_text(errors="replace")
            stdout = ""
        else:
            proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            returncode, (stdout, stderr) = _wait(proc)
            output = stdout + stderr
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
