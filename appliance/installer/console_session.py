"""The live ISO's installer on a console: run the install once, and when it stops (failed, or
finished without rebooting) wait for the person at the console instead of starting over.

systemd restarting a failed unattended install would erase the disk again and again with the same
broken answers; here nothing happens until someone chooses what to do next.
"""

from __future__ import annotations

import os
import signal
import subprocess
import traceback
from collections.abc import Callable
from typing import TextIO

from appliance.errors import ApplianceError

CHOICES = {
    "again": "run the installer again (after fixing the kickstart or the cabling)",
    "shell": "open a root shell here (the install log is /var/log/appliance-install.log)",
    "reboot": "reboot",
    "poweroff": "power off",
}


def parse_choice(line: str) -> str | None:
    """``line`` as one of CHOICES (a unique prefix will do), or None."""
    word = line.strip().lower()
    if not word:
        return None
    matches = [name for name in CHOICES if name.startswith(word)]
    return matches[0] if len(matches) == 1 else None


def ask_next_step(stdin: TextIO, stdout: TextIO) -> str | None:
    """Show the choices and read one; None when the console has no input any more."""
    stdout.write("\nWhat next?\n")
    for name, text in CHOICES.items():
        stdout.write(f"  {name:<9} {text}\n")
    while True:
        stdout.write("Type one of again, shell, reboot, poweroff: ")
        stdout.flush()
        try:
            line = stdin.readline()
        except KeyboardInterrupt:  # Ctrl-C here must not end the console's only program
            stdout.write("\n")
            continue
        if not line:
            return None
        choice = parse_choice(line)
        if choice is not None:
            return choice
        stdout.write(f"  '{line.strip()}' is not one of the choices\n")


def describe_failure(err: BaseException) -> str:
    if isinstance(err, ApplianceError):
        return f"appliance: error: {err}"
    if isinstance(err, KeyboardInterrupt):
        return "appliance: the install was interrupted"
    where = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    place = f" at {where.filename}:{where.lineno}" if where else ""
    return (
        f"appliance: internal error {type(err).__name__}: {err}{place}\n"
        "  hint: this is a bug; please report it with /var/log/appliance-install.log"
    )


def run_on_console(
    install: Callable[[], int], stdin: TextIO, stdout: TextIO, act: Callable[[str], None]
) -> int:
    """Run ``install`` until the person at the console picks reboot or power off."""
    while True:
        try:
            status = install()
            if status == 0:
                stdout.write("\nThe install finished.\n")
        except (Exception, KeyboardInterrupt) as err:  # any failure waits for the person at the console
            stdout.write(describe_failure(err) + "\n")
            stdout.write("Nothing is retried by itself: the disk is left as it is now.\n")
        choice = ask_next_step(stdin, stdout)
        if choice is None:  # no input any more (the console went away): wait quietly, never loop
            signal.pause()
            continue
        if choice != "again":
            act(choice)
            if choice in ("reboot", "poweroff"):
                return 0


def act_on_host(choice: str) -> None:
    """What the choices do on the live system."""
    if choice == "shell":
        subprocess.run([os.environ.get("SHELL", "/bin/bash"), "-l"], check=False)
    elif choice in ("reboot", "poweroff"):
        subprocess.run(["systemctl", choice], check=False)
