"""One exception hierarchy for the whole toolkit.

Every error a user can see says what was wrong and how to fix it: ``str(err)`` gives both.
"""

from __future__ import annotations


class ApplianceError(Exception):
    """Base of every error the toolkit reports to a user."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(ApplianceError):
    """The command line or an input file is wrong."""

    exit_code = 2


class ConfigError(ApplianceError):
    """A configuration file or state directory is missing or wrong."""


class DatabaseError(ApplianceError):
    """The database cannot be reached or is in an unexpected state."""


class ExternalCommandError(ApplianceError):
    """A program we run (mariadb-dump, qemu, xorriso, ...) failed."""
