"""Run a QEMU command and wait for a marker on its serial console (stdout)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SerialResult:
    found: bool
    line: str  # the line holding the marker ("" if not found)
    seconds: float
    transcript: str


def wait_for_marker(
    cmd: list[str],
    marker: str,
    timeout: float,
    transcript_file: Path | None = None,
    *,
    whole_line: bool = True,
) -> SerialResult:
    """Start ``cmd``, read its stdout until ``marker`` shows up or ``timeout``; then kill it.

    With ``whole_line`` wait for the end of the marker's line (to read what follows it); without,
    return as soon as the marker is there (for prompts, which end without a newline).
    """
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    buf = b""
    try:
        while time.monotonic() - start < timeout:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
                text = buf.decode(errors="replace")
                m = re.search(rf"^.*{re.escape(marker)}.*$", text, re.MULTILINE)
                if m and (m.end() < len(text) or not whole_line):
                    return SerialResult(True, m.group(0).strip(), time.monotonic() - start, text)
            elif proc.poll() is not None:
                break
        return SerialResult(False, "", time.monotonic() - start, buf.decode(errors="replace"))
    finally:
        proc.kill()
        proc.wait()
        if transcript_file is not None:
            transcript_file.write_bytes(buf)
