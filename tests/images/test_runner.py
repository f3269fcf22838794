"""The build's runner: a stopped build lets the running program clean up (real child processes)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.errors import ExternalCommandError
from appliance.images.runner import run


@pytest.fixture
def interrupt_soon() -> Iterator[None]:
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _cleaning_child(marker: Path) -> list[str]:
    # like mmdebstrap: on SIGTERM it takes a moment to clean up, then exits
    return ["sh", "-c", f'trap "sleep 0.3; echo cleaned > {marker}; kill \\$pid; exit 3" TERM; sleep 30 & pid=$!; wait']


@pytest.mark.usefixtures("interrupt_soon")
def test_interrupted_run_waits_for_the_child_to_clean_up(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    with pytest.raises(KeyboardInterrupt):
        run(_cleaning_child(marker))
    assert marker.read_text() == "cleaned\n"


@pytest.mark.usefixtures("interrupt_soon")
def test_interrupted_run_with_a_log_file_waits_too(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    with pytest.raises(KeyboardInterrupt):
        run(_cleaning_child(marker), log_file=tmp_path / "log")
    assert marker.read_text() == "cleaned\n"


def test_failure_reports_the_output_tail(tmp_path: Path) -> None:
    assert run(["sh", "-c", "echo out; echo err >&2"]) == "out\n"
    with pytest.raises(ExternalCommandError) as err:
        run(["sh", "-c", "echo boom >&2; exit 4"], what="boomer")
    assert "boomer failed (exit 4)" in err.value.message and "boom" in err.value.message
