"""A cleanup stack: every step that mounts, attaches or binds pushes its undo; undo runs in reverse.

As in XCP-ng's host installer, cleanups run whether the install succeeded or failed, a failing
cleanup is logged and does not hide the original error, and the stack can be unwound early.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType


class CleanupStack:
    def __init__(self, log: Callable[[str], None] = lambda _msg: None) -> None:
        self._actions: list[tuple[str, Callable[[], object]]] = []
        self._log = log
        self.failures: list[str] = []

    def push(self, description: str, action: Callable[[], object]) -> None:
        self._actions.append((description, action))

    def __len__(self) -> int:
        return len(self._actions)

    def unwind(self) -> None:
        """Run every pushed action, last first; keep going past failures and record them."""
        while self._actions:
            description, action = self._actions.pop()
            try:
                action()
                self._log(f"cleanup: {description}")
            except Exception as err:  # a failed cleanup must not stop the others
                message = f"cleanup failed: {description}: {err}"
                self.failures.append(message)
                self._log(message)

    def __enter__(self) -> CleanupStack:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.unwind()
