"""Role set-up in the installed system: one small step per role, each running our own CLI in a chroot.

The command lines are built here (pure) so they are easy to follow as the manager and agent CLIs grow.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from appliance.errors import ConfigError, ExternalCommandError
from appliance.installer.answers import AGENT_STATE_DIR, MANAGER_DB_MOUNTPOINT, MANAGER_STATE_DIR, Answers
from appliance.installer.runner import InstallLog, run

ADMIN_PASSWORD_FILE = "root/.appliance-admin-password"
DB_SOCKET = "/run/mysqld/mysqld.sock"  # Debian's MariaDB service


def chroot(target: Path, *cmd: str) -> list[str]:
    return ["chroot", str(target), *cmd]


def agent_set_password_cmd(target: Path) -> list[str]:
    """The agent stores the crypt(3) hash (read from stdin) in its state dir."""
    return chroot(target, "appliance", "agent", "set-password", "--state-dir", AGENT_STATE_DIR, "--crypted")


def agent_enroll_cmd(target: Path, answers: Answers) -> list[str]:
    assert answers.server is not None and answers.server.enrollment is not None
    enrol = answers.server.enrollment
    return chroot(target, "appliance", "agent", "enroll", "--state-dir", AGENT_STATE_DIR,
                  "--manager", enrol.manager_url, "--fingerprint", enrol.fingerprint, "--token", enrol.token,
                  "--hostname", answers.hostname)


def manager_db_url(password: str) -> str:
    return f"mysql://appliance:{password}@localhost/appliance?unix_socket={DB_SOCKET}"


def manager_init_cmd(target: Path, answers: Answers, db_password: str) -> list[str]:
    cmd = chroot(target, "appliance", "manager", "init", "--state-dir", MANAGER_STATE_DIR,
                 "--db-url", manager_db_url(db_password), "--admin-password-file", "/" + ADMIN_PASSWORD_FILE,
                 "--start-db", MANAGER_DB_MOUNTPOINT,
                 "--name", answers.hostname)
    if answers.network.address:
        cmd += ["--name", answers.network.address]
    return cmd


def fingerprint_in(init_output: str) -> str | None:
    """The CA fingerprint ``appliance manager init`` printed, if it did."""
    found = re.search(r"^CA fingerprint \(SHA-256\): (\S+)", init_output, re.MULTILINE)
    return found.group(1) if found else None


def manager_fingerprint_cmd(target: Path) -> list[str]:
    return chroot(target, "appliance", "manager", "ca-fingerprint", "--state-dir", MANAGER_STATE_DIR)


def _require_appliance(target: Path) -> None:
    for candidate in ("usr/local/bin/appliance", "usr/bin/appliance", "opt/appliance/bin/appliance"):
        if (target / candidate).exists():
            return
    raise ConfigError("the installed system has no 'appliance' command",
                      "the image must install the appliance package; rebuild it")


def configure_server(target: Path, answers: Answers, log: InstallLog, say: Callable[[str], None]) -> None:
    """Agent password, then enrollment with the manager when the answers name one."""
    assert answers.server is not None
    _require_appliance(target)
    run(agent_set_password_cmd(target), log, input_text=answers.server.agent_password_hash + "\n",
        hint="the agent could not store its password; see the install log")
    enrollment = answers.server.enrollment
    if enrollment is None:
        say("server: no manager named; discover this server from the manager later")
        return
    say(f"server: enrolling with {enrollment.manager_url}")
    try:
        run(agent_enroll_cmd(target, answers), log)
    except ExternalCommandError as err:
        raise ExternalCommandError(
            f"enrollment with the manager {enrollment.manager_url} failed: {err.message}",
            "check the manager URL, the CA fingerprint and the token (tokens expire); the manager must be "
            "reachable from this host. Fix the kickstart and run the install again",
        ) from err
    say("server: enrolled; the manager's CA is pinned")


def configure_manager(target: Path, answers: Answers, log: InstallLog, say: Callable[[str], None],
                      push_cleanup: Callable[[str, Callable[[], object]], None]) -> None:
    """Database, CA and admin user via ``appliance manager init``; print the CA fingerprint."""
    assert answers.manager is not None
    _require_appliance(target)
    if not (target / MANAGER_DB_MOUNTPOINT.lstrip("/")).is_dir():
        raise ConfigError(f"the manager database filesystem {MANAGER_DB_MOUNTPOINT} is not mounted",
                          "this is a bug in the layout step; see the install log")
    password_file = target / ADMIN_PASSWORD_FILE
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password_file.touch(mode=0o600)
    password_file.write_text(answers.manager.admin_password + "\n", encoding="utf-8")
    push_cleanup("remove the admin password file", lambda: password_file.unlink(missing_ok=True))
    import secrets  # hashlib, OpenSSL: not on the installer's start-up path

    init = run(manager_init_cmd(target, answers, secrets.token_urlsafe(18)), log,
               hint="the manager could not be initialised; see the install log")
    fingerprint = fingerprint_in(init.stdout) or run(manager_fingerprint_cmd(target), log).stdout.strip()
    say(f"manager: CA fingerprint (give it to servers' 'enroll --fingerprint'): {fingerprint}")
