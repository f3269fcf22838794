"""The deprecated legacy TCPS API: TLS with the manager's certificate, one command per line."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from appliance.manager.cli import register
from appliance.shell.companion import listen_option
from tests.conftest import ADMIN_PASSWORD
from tests.manager.helpers import unique
from tests.shell.conftest import CliManager


class LegacyClient:
    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.file = sock.makefile("rwb")

    def line(self) -> str:
        return self.file.readline().decode().rstrip("\n")

    def call(self, text: str) -> tuple[str, dict]:
        self.file.write(text.encode() + b"\n")
        self.file.flush()
        status, _, body = self.line().partition(" ")
        return status, json.loads(body)


@contextmanager
def legacy(mgr: CliManager) -> Iterator[LegacyClient]:
    ctx = ssl.create_default_context(cafile=str(mgr.ca))
    with (
        socket.create_connection(("127.0.0.1", mgr.legacy_port), timeout=60) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        yield LegacyClient(sock)


def test_legacy_session(cli_manager: CliManager, api: httpx.Client) -> None:
    with legacy(cli_manager) as c:
        greeting = c.line()
        assert greeting.startswith("OK appliance-legacy/1 DEPRECATED: use the WS-API at https://")

        status, body = c.call("list Vm")
        assert status == "ERR" and body["error"]["code"] == "unauthorized"
        status, body = c.call(f"LOGIN admin wrong-{ADMIN_PASSWORD}")
        assert status == "ERR" and "wrong user name or password" in body["error"]["message"]
        status, body = c.call(f"LOGIN admin {ADMIN_PASSWORD}")
        assert (status, body) == ("OK", {"user": "admin", "role": "admin"})

        name = unique("vm")
        status, job = c.call(f"create Vm name={name} vcpus=2")
        assert status == "OK" and job["state"] == "succeeded", job
        status, listed = c.call(f"list Vm name={name}")
        assert status == "OK"
        assert listed["items"] == api.get("/vms", params={"name": name}).json()["items"]

        status, body = c.call("create Vm vcpus=lots")
        assert status == "ERR" and body["error"]["code"] == "bad_value"
        status, body = c.call("list Vm; list Job")
        assert status == "ERR" and body["error"]["code"] == "one_command"
        status, body = c.call("QUIT")
        assert status == "OK"
        assert c.file.readline() == b""  # the server closed the connection
    log = cli_manager.log_text()
    assert "legacy TCPS API: connection from 127.0.0.1; this API is deprecated" in log
    assert "legacy TCPS login failed: user 'admin' from 127.0.0.1" in log


def test_legacy_refuses_clients_that_do_not_speak_tls(cli_manager: CliManager) -> None:
    data = b""
    with socket.create_connection(("127.0.0.1", cli_manager.legacy_port), timeout=30) as raw:
        raw.sendall(b"LOGIN admin x\n")
        try:
            while chunk := raw.recv(4096):
                data += chunk
        except ConnectionResetError:
            pass
    assert b"appliance-legacy" not in data  # nothing in clear text: a TLS alert at most, then the close


def test_the_legacy_listener_is_off_unless_asked_for() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["manager", "serve", "--state-dir", "/x"])
    assert args.legacy_listen is None and listen_option(args.legacy_listen, 54322) is None
    assert args.cli_listen == "0.0.0.0:10000" and listen_option(args.cli_listen, 10000) == ("0.0.0.0", 10000)
    off = parser.parse_args(["manager", "serve", "--state-dir", "/x", "--cli-listen", "off"])
    assert listen_option(off.cli_listen, 10000) is None
    assert listen_option("0.0.0.0", 54322) == ("0.0.0.0", 54322)
