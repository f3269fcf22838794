"""One validation for every path: ``appliance ks validate`` and the installer call ``validate_kickstart``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import UsageError
from appliance.installer.answers import Answers, Role
from appliance.installer.ks_answers import answers_from_kickstart
from appliance.installer.ks_parse import Dialect, Problem, parse_kickstart
from appliance.installer.passwords import sha512_crypt


@dataclass(frozen=True)
class ValidationResult:
    filename: str
    dialect: Dialect
    answers: Answers | None
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return self.answers is not None and not self.errors

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    def report(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def validate_kickstart(
    text: str,
    filename: str,
    role: Role,
    dialect: str = "auto",
    hasher: Callable[[str], str] = sha512_crypt,
) -> ValidationResult:
    parsed = parse_kickstart(text, filename, dialect)
    problems = list(parsed.problems)
    answers = None
    if not parsed.errors:
        answers, more = answers_from_kickstart(parsed, role, filename, hasher)
        problems.extend(more)
    else:
        # Still report what we can about role and support, from what did parse.
        _, more = answers_from_kickstart(parsed, role, filename, hasher=lambda _pw: "$6$unchecked$x")
        problems.extend(more)
    problems.sort(key=lambda p: (p.line, p.severity != "error"))
    return ValidationResult(
        filename=filename, dialect=parsed.dialect, answers=answers, problems=tuple(dict.fromkeys(problems))
    )


def validate_kickstart_file(path: Path, role: Role, dialect: str = "auto") -> ValidationResult:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UsageError(
            f"cannot read kickstart {path}: {err.strerror}", "give the path of a readable kickstart file"
        ) from err
    except UnicodeDecodeError as err:
        raise UsageError(f"kickstart {path} is not UTF-8 text", "save the file as UTF-8") from err
    return validate_kickstart(text, str(path), role, dialect)
