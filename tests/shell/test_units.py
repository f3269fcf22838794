"""The engine's pure parts: splitting lines, attribute types, completion, login throttling."""

from __future__ import annotations

import ssl

import pytest

from appliance.shell.api import CommandError, WsApi, base_url
from appliance.shell.commands import duration_seconds
from appliance.shell.companion import loopback_url
from appliance.shell.engine import Engine, common_prefix
from appliance.shell.ratelimit import FailedLogins
from appliance.shell.schema import Field, coerce
from appliance.shell.words import parse, snake, split_commands


def test_lines_split_like_a_shell_with_semicolons_between_commands() -> None:
    assert split_commands('create Vm name=a description="two words"; list Vm') == [
        ["create", "Vm", "name=a", "description=two words"],
        ["list", "Vm"],
    ]
    assert split_commands("show Vm 'a;b'") == [["show", "Vm", "a;b"]]
    assert split_commands(";;") == []
    words = parse(["edit", "Vm", "name=old", "name=new", "memoryMib=64"])
    assert words.attrs == (("name", "old"), ("name", "new"), ("memory_mib", "64"))
    with pytest.raises(CommandError, match="is not an attribute name"):
        parse(["create", "Vm", "=x"])
    assert snake("ipAddress") == "ip_address" and snake("memory_mib") == "memory_mib"


def test_values_are_checked_against_their_field_types() -> None:
    assert coerce(Field("vcpus", "integer"), "4") == 4
    assert coerce(Field("ha", "boolean"), "Yes") is True
    assert coerce(Field("disks", "array"), '[{"name": "d", "size_mib": 8}]') == [{"name": "d", "size_mib": 8}]
    assert coerce(Field("server_id", "string", nullable=True), "") is None
    for field, text in [
        (Field("vcpus", "integer"), "4.5"),
        (Field("ha", "boolean"), "maybe"),
        (Field("disks", "array"), "{}"),
        (Field("domain_type", "string", choices=("pv", "hvm")), "kvm"),
    ]:
        with pytest.raises(CommandError) as err:
            coerce(field, text)
        assert err.value.exit_code == 2
    assert duration_seconds("ttl", "24h") == 86400 and duration_seconds("ttl", "90") == 90


def test_completion_without_a_manager_offers_commands_types_and_fixed_attributes() -> None:
    # An unreachable manager: completion must never call it.
    engine = Engine(WsApi("https://127.0.0.1:1", ssl.create_default_context()))
    assert engine.complete("sho") == ["show", "showCaFingerprint"]
    assert engine.complete("list ") == ["Backup", "Event", "Job", "Repository", "Server", "ServerPool", "User", "Vm"]
    assert engine.complete("list serv") == ["Server", "ServerPool"]
    assert engine.complete("set out") == ["outputMode="]
    assert engine.complete("set outputMode=j") == ["outputMode=json"]
    assert engine.complete("frobnicate ") == []
    assert common_prefix(["showCaFingerprint", "show"]) == "show"


def test_failed_logins_lock_an_address_out_for_a_while() -> None:
    now = [1000.0]
    limiter = FailedLogins(max_failures=3, window=60, lockout=30, clock=lambda: now[0])
    assert not limiter.failed("10.0.0.1") and not limiter.failed("10.0.0.1")
    now[0] += 61  # failures older than the window are forgotten
    assert not limiter.failed("10.0.0.1") and not limiter.failed("10.0.0.1")
    assert limiter.failed("10.0.0.1")
    assert limiter.locked_for("10.0.0.1") == 30 and limiter.locked_for("10.0.0.2") == 0
    now[0] += 30
    assert limiter.locked_for("10.0.0.1") == 0
    limiter.failed("10.0.0.3")
    limiter.succeeded("10.0.0.3")  # a good login clears the count
    assert not limiter.failed("10.0.0.3") and not limiter.failed("10.0.0.3")


def test_urls() -> None:
    assert base_url("manager.example:7002") == "https://manager.example:7002/api/v1"
    assert base_url("https://m:7002/api/v1/") == "https://m:7002/api/v1"
    assert loopback_url("0.0.0.0:7002") == "https://127.0.0.1:7002/api/v1"
    assert loopback_url("[::]:7002") == "https://[::1]:7002/api/v1"
    assert loopback_url("10.1.2.3:7443") == "https://10.1.2.3:7443/api/v1"
