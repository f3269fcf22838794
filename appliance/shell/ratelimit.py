"""Failed-login throttling per client address: after too many failures in a window, a lock-out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_FAILURES = 5  # failed logins from one address within WINDOW_SECONDS ...
WINDOW_SECONDS = 60.0
LOCKOUT_SECONDS = 60.0  # ... lock that address out this long


@dataclass
class FailedLogins:
    max_failures: int = MAX_FAILURES
    window: float = WINDOW_SECONDS
    lockout: float = LOCKOUT_SECONDS
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def locked_for(self, address: str) -> float:
        """Seconds ``address`` must still wait (0: it may try)."""
        with self._lock:
            left = self._locked_until.get(address, 0.0) - self.clock()
            if left <= 0:
                self._locked_until.pop(address, None)
                return 0.0
            return left

    def failed(self, address: str) -> bool:
        """Count a failure; True if it locks the address out."""
        now = self.clock()
        with self._lock:
            recent = [t for t in self._failures.get(address, []) if now - t < self.window]
            recent.append(now)
            if len(recent) >= self.max_failures:
                self._failures.pop(address, None)
                self._locked_until[address] = now + self.lockout
                return True
            self._failures[address] = recent
            if len(self._failures) > 10_000:  # forget the oldest addresses rather than grow without bound
                for stale in list(self._failures)[:5_000]:
                    del self._failures[stale]
            return False

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)
