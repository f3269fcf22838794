"""`manager init --start-db`: what the installer runs in the new host, before any MariaDB service runs."""

from __future__ import annotations

import pwd
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

from appliance.manager import dbserver
from tests.conftest import ADMIN_PASSWORD, RunningManager


@pytest.mark.skipif(
    not shutil.which("mariadbd") and not Path("/usr/sbin/mariadbd").exists(), reason="no mariadbd"
)
def test_init_with_a_private_database_then_serve_on_the_hosts_own() -> None:
    pwd.getpwnam("mysql")  # installed with mariadb-server, as on the manager appliance
    # mariadbd runs as `mysql`, which cannot enter pytest's private temp dirs
    tmp_path = Path(tempfile.mkdtemp(prefix="appliance-initdb-test-"))
    try:
        _check(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _check(tmp_path: Path) -> None:
    datadir, run = tmp_path / "var-lib-mysql", tmp_path / "run-mysqld"
    run.mkdir()
    shutil.chown(run, "mysql", "mysql")
    tmp_path.chmod(0o755)
    runtime_url = f"mysql://appliance:s3cret-'pw@localhost/appliance?unix_socket={run}/mysqld.sock"
    (tmp_path / "pw").write_text(ADMIN_PASSWORD + "\n")
    state = tmp_path / "manager"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance",
            "manager",
            "init",
            "--state-dir",
            str(state),
            "--db-url",
            runtime_url.replace("'", "%27"),
            "--admin-password-file",
            str(tmp_path / "pw"),
            "--start-db",
            str(datadir),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (datadir / "mysql").is_dir() and datadir.stat().st_uid == pwd.getpwnam("mysql").pw_uid
    assert tomllib.loads((state / "manager.toml").read_text())["db_url"].endswith(
        f"?unix_socket={run}/mysqld.sock"
    )

    # the installed host's MariaDB (here: the same datadir, its socket) serves the manager
    host_db = dbserver.MariaDBInstance(
        run, 0, data=datadir, run_as="mysql", networking=False, socket_auth=True
    )
    proc = dbserver.start(host_db)
    try:
        assert host_db.socket_path == run / "mysqld.sock"
        mgr = RunningManager(state, runtime_url, dbserver.free_tcp_port(), tmp_path / "manager.log")
        mgr.start()
        try:
            with mgr.client() as c:
                assert c.get("/me").json()["name"] == "admin"
        finally:
            mgr.stop()
    finally:
        dbserver.stop(proc)
