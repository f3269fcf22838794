"""Parse a kickstart with pykickstart, collecting every problem as FILE:LINE: message.

Handler versions are chosen deliberately and pinned:
  * ``rhel9``: pykickstart's RHEL9 grammar, for kickstarts written today (``%end`` required).
  * ``ovm3``: pykickstart's RHEL5 grammar, the Anaconda that Oracle VM Server 3.x kickstarts were
    written for (``install``, ``nfs``, sections without ``%end``, ``zerombr yes``).
Both get the same extra commands (Oracle's ``ovsagent``/``ovsmgmntif``, our ``enroll`` and
``manageradmin``, and ``sshkey`` from pykickstart's F22 grammar for ``ovm3``), registered through
``handler.registerCommand`` as pykickstart intends. ``auto`` picks ``ovm3`` when the file uses an
old-only command (``install``, ``upgrade``, ...); otherwise ``rhel9``, falling back to ``ovm3`` when
only that grammar parses the file cleanly.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pykickstart.base import BaseHandler
from pykickstart.commands.sshkey import F22_SshKey, F22_SshKeyData
from pykickstart.errors import KickstartError
from pykickstart.parser import KickstartParser
from pykickstart.version import RHEL5, RHEL9, makeVersion

from appliance.installer.ks_commands import CUSTOM_COMMANDS

Dialect = Literal["rhel9", "ovm3"]
DIALECTS: dict[str, int] = {"rhel9": RHEL9, "ovm3": RHEL5}

# Commands that only the old grammar has: their presence means an Oracle VM Server 3.x era file.
_OLD_ONLY_COMMANDS = {"install", "upgrade", "langsupport", "mouse", "key"}


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    severity: Literal["error", "warning"]
    message: str

    def __str__(self) -> str:
        tag = "" if self.severity == "error" else "warning: "
        return f"{self.file}:{self.line}: {tag}{self.message}"


@dataclass
class ParsedKickstart:
    """The pykickstart handler after parsing, plus where each command and section was seen."""

    dialect: Dialect
    handler: Any
    command_lines: dict[str, list[int]] = field(default_factory=dict)
    section_lines: list[tuple[str, int]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def first_line(self, command: str) -> int:
        lines = self.command_lines.get(command)
        return lines[0] if lines else 0

    def last_line(self, command: str) -> int:
        lines = self.command_lines.get(command)
        return lines[-1] if lines else 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def make_handler(dialect: Dialect) -> BaseHandler:
    """A pykickstart handler of the pinned version with our commands registered."""
    handler = makeVersion(DIALECTS[dialect])
    for name, cls in CUSTOM_COMMANDS.items():
        handler.registerCommand(name, cls)
    if "sshkey" not in handler.commands:
        handler.registerCommand("sshkey", F22_SshKey)
        handler.registerData("SshKeyData", F22_SshKeyData)
    return handler


class _RecordingParser(KickstartParser):
    """A KickstartParser that keeps going after a bad command and records lines and warnings."""

    def __init__(self, handler: BaseHandler, filename: str, result: ParsedKickstart) -> None:
        self._filename = filename
        self._result = result
        super().__init__(handler, followIncludes=False, missingIncludeIsFatal=False)

    def registerSection(self, obj: Any) -> None:
        original: Callable[[int, list[str]], Any] = obj.handleHeader
        record = self._result.section_lines

        def handle_header(lineno: int, args: list[str]) -> Any:
            record.append((args[0], lineno))
            return original(lineno, args)

        obj.handleHeader = handle_header
        super().registerSection(obj)

    def handleCommand(self, lineno: int, args: list[str]) -> Any:
        self._result.command_lines.setdefault(args[0], []).append(lineno)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                return super().handleCommand(lineno, args)
            except KickstartError as err:
                self._add("error", err.lineno or lineno, _message_of(err))
                return None
            finally:
                for warning in caught:
                    if not issubclass(warning.category, ResourceWarning):
                        self._add("warning", lineno, _clean(str(warning.message)))

    def _add(self, severity: Literal["error", "warning"], line: int, message: str) -> None:
        self._result.problems.append(Problem(self._filename, line, severity, message))


def _message_of(err: KickstartError) -> str:
    return _clean(str(err.message) if err.message else "syntax error")


def _clean(message: str) -> str:
    # pykickstart's messages often carry "on line N" and newlines; we print FILE:LINE: ourselves.
    message = re.sub(r"\s*on line \d+:?", "", message)
    return " ".join(message.split())


def _include_problems(text: str, filename: str) -> list[Problem]:
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        word = line.strip().split(maxsplit=1)[0] if line.strip() else ""
        if word in ("%include", "%ksappend"):
            problems.append(
                Problem(
                    filename,
                    number,
                    "error",
                    f"{word} is not supported: the installer validates the whole kickstart before it runs "
                    "anything; put the included text into this file",
                )
            )
    return problems


def parse_with(dialect: Dialect, text: str, filename: str) -> ParsedKickstart:
    handler = make_handler(dialect)
    result = ParsedKickstart(dialect=dialect, handler=handler)
    result.problems.extend(_include_problems(text, filename))
    parser = _RecordingParser(handler, filename, result)
    try:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            parser.readKickstartFromString(text)
    except KickstartError as err:  # structural: unknown section, missing %end, ...
        result.problems.append(Problem(filename, err.lineno or 0, "error", _message_of(err)))
    result.problems.sort(key=lambda p: p.line)
    return result


def _uses_old_only_command(text: str) -> bool:
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0] in _OLD_ONLY_COMMANDS:
            return True
    return False


def parse_kickstart(text: str, filename: str, dialect: str = "auto") -> ParsedKickstart:
    """Parse ``text`` (from ``filename``, used in messages) in the given or detected dialect."""
    if dialect in DIALECTS:
        return parse_with(dialect, text, filename)  # type: ignore[arg-type]
    if dialect != "auto":
        raise ValueError(f"unknown kickstart dialect {dialect!r}")
    if _uses_old_only_command(text):
        return parse_with("ovm3", text, filename)
    modern = parse_with("rhel9", text, filename)
    if modern.errors:
        old = parse_with("ovm3", text, filename)
        if not old.errors:
            return old
    return modern
