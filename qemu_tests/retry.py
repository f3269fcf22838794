"""Waiting with a clear timeout: ``retry()`` and the run's global ``Deadline``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A wait ran out of time; the message says what was awaited and the last answer seen."""


class Deadline:
    """The global time limit of one test run: every wait is cut to what is left of it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def clamp(self, timeout: float, what: str) -> float:
        """``timeout`` cut to the time left; raises WaitTimeout if the run is already over time."""
        left = self.remaining()
        if left <= 0:
            raise WaitTimeout(f"global timeout of {self.seconds:.0f} s reached before {what}")
        return min(timeout, left)


def retry(
    attempt: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 1.0,
    deadline: Deadline | None = None,
) -> T:
    """Call ``attempt`` until it returns something other than None/False or the time is up.

    Exceptions from ``attempt`` count as a failed try; the last one is named in the timeout error.
    """
    if deadline is not None:
        timeout = deadline.clamp(timeout, what)
    end = time.monotonic() + timeout
    last = "no attempt finished"
    while True:
        try:
            result = attempt()
            if result is not None and result is not False:
                return result
            last = f"last answer: {result!r}"
        except Exception as exc:
            last = f"last error: {exc}"
        if time.monotonic() + interval > end:
            raise WaitTimeout(f"timed out after {timeout:.0f} s waiting for {what} ({last})")
        time.sleep(interval)
