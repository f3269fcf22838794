"""`appliance manager up`: a private MariaDB plus a manager in one work directory, for trying things out."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from appliance import pki
from appliance.manager import dbserver
from appliance.manager.config import StatePaths, parse_listen
from appliance.pki import write_private


def _secret(path: Path) -> str:
    if not path.exists():
        write_private(path, (secrets.token_urlsafe(18) + "\n").encode())
    return path.read_text().strip()


def up(workdir: Path, listen: str) -> int:
    from appliance.manager.service import serve
    from appliance.manager.setup import init

    workdir = workdir.resolve()
    host, port = parse_listen(listen)
    inst = dbserver.MariaDBInstance(workdir / "mariadb", port=dbserver.free_tcp_port())
    print(f"[1/3] starting MariaDB in {inst.basedir}", flush=True)
    proc = dbserver.start(inst)
    try:
        db_password = _secret(workdir / "db-password")
        admin_file = workdir / "admin-password"
        admin_password = _secret(admin_file)
        dbserver.create_database(inst, "manager", "manager", db_password)
        paths = StatePaths(workdir / "manager")
        if not paths.config.exists():
            print("[2/3] initialising the manager (schema, admin user, CA)", flush=True)
            url = f"mysql://manager:{db_password}@localhost/manager?unix_socket={inst.socket_path}"
            init(paths.root, url, admin_file)
        else:
            print("[2/3] manager already initialised", flush=True)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        fingerprint = pki.fingerprint(pki.load_cert(paths.ca_cert))
        print("[3/3] manager running; Ctrl-C stops it and its database\n", flush=True)
        print(f"  WS-API:          https://{shown}:{port}/api/v1")
        print(f"  user / password: admin / {admin_password}   (also in {admin_file})")
        print(f"  CA certificate:  {paths.ca_cert}")
        print(f"  CA fingerprint:  {fingerprint}")
        print(
            f"  try:             curl --cacert {paths.ca_cert} -u admin:$(cat {admin_file}) "
            f"https://{shown}:{port}/api/v1/vms\n",
            flush=True,
        )
        return serve(paths.root, listen, argparse.Namespace(listen=listen))
    finally:
        dbserver.stop(proc)
