"""The live console's installer session: choices after an install stops."""

from __future__ import annotations

import io

from appliance.errors import UsageError
from appliance.installer.console_session import describe_failure, parse_choice, run_on_console


def test_choices_by_unique_prefix() -> None:
    assert parse_choice("again\n") == "again"
    assert parse_choice(" P ") == "poweroff"
    assert parse_choice("re") == "reboot"
    assert parse_choice("") is None and parse_choice("x") is None


def test_failure_then_again_then_poweroff_runs_twice_and_stops() -> None:
    attempts: list[int] = []
    acted: list[str] = []

    def install() -> int:
        attempts.append(1)
        raise UsageError("no kickstart", "give ks=")

    out = io.StringIO()
    assert run_on_console(install, io.StringIO("again\npoweroff\n"), out, acted.append) == 0
    assert len(attempts) == 2 and acted == ["poweroff"]
    assert out.getvalue().count("appliance: error: no kickstart") == 2


def test_internal_errors_name_the_place_and_the_log() -> None:
    try:
        {}["missing"]
    except KeyError as err:
        text = describe_failure(err)
    assert "internal error KeyError" in text and "test_console_session.py" in text
    assert "/var/log/appliance-install.log" in text


class _InterruptedOnce(io.StringIO):
    """A console whose first read is cut short by Ctrl-C."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.interrupted = False

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        return super().readline(size)


def test_ctrl_c_at_the_choice_asks_again_instead_of_ending_the_console() -> None:
    acted: list[str] = []
    out = io.StringIO()
    assert run_on_console(lambda: 1, _InterruptedOnce("poweroff\n"), out, acted.append) == 0
    assert acted == ["poweroff"] and out.getvalue().count("Type one of") == 2
