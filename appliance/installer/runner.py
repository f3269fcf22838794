"""Running programs for the install steps: logged, as argument lists, failures raised readably."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from appliance.errors import ExternalCommandError


class InstallLog:
    """The install log: every command, its output and every step, with timestamps."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = path.open("a", encoding="utf-8")

    def write(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        for line in message.rstrip("\n").splitlines() or [""]:
            self._file.write(f"{stamp} {line}\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def run(
    cmd: Sequence[str],
    log: InstallLog,
    *,
    input_text: str | None = None,
    check: bool = True,
    hint: str | None = None,
    on_line: Callable[[str], None] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; log it with its output; raise ExternalCommandError when it fails and ``check``."""
    cmd = [str(c) for c in cmd]
    log.write(f"$ {shlex.join(cmd)}")
    if on_line is None:
        proc = subprocess.run(cmd, input=input_text, capture_output=True, text=True, check=False, env=env)
        output = (proc.stdout or "") + (proc.stderr or "")
    else:
        proc = _run_streaming(cmd, on_line, env)
        output = proc.stdout or ""
    if output.strip():
        log.write(output)
    if check and proc.returncode != 0:
        tail = "\n    ".join(output.strip().splitlines()[-8:]) or "(no output)"
        raise ExternalCommandError(
            f"{cmd[0]} failed (exit {proc.returncode}): {shlex.join(cmd)}\n    {tail}",
            hint or f"see the install log {log.path} for the full output",
        )
    return proc


def _run_streaming(
    cmd: list[str],
    on_line: Callable[[str], None],
    env: dict[str, str] | None,
) -> subprocess.CompletedProcess[str]:
    """Run with output read as it comes (split at CR and LF) so progress can be shown."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert proc.stdout is not None
    kept: list[str] = []
    buffer = b""
    while chunk := proc.stdout.read1(4096):  # type: ignore[attr-defined]
        buffer += chunk
        *lines, buffer = buffer.replace(b"\r", b"\n").split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                on_line(line)
                kept.append(line)
                del kept[:-200]
    returncode = proc.wait()
    return subprocess.CompletedProcess(cmd, returncode, "\n".join(kept), "")
