"""Pure parts: VM specs, domain XML, the wire format, passwords, the API reference."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from appliance.errors import UsageError
from appliance.server import apidoc, passwords, rpcproto
from appliance.server.cli import parse_listen
from appliance.server.dispatch import collect_verbs
from appliance.server.domainxml import Flavor, build_domain_xml
from appliance.server.stats import vm_cpu_percent
from appliance.server.verbs import AgentVerbs
from appliance.server.vmspec import SpecError, parse_vm_spec

ISSUE_VERBS = {
    "discover_server",
    "discover_hardware",
    "discover_network",
    "discover_storage",
    "take_ownership",
    "release_ownership",
    "update_agent_password",
    "set_statistics_interval",
    "list_vms",
    "create_vm",
    "start_vm",
    "stop_vm",
    "delete_vm",
    "get_vm_info",
    "get_statistics",
}


def test_api_reference_is_generated_from_the_code(repo_root: Path) -> None:
    doc = (repo_root / "docs/agent-api.md").read_text()
    assert doc == apidoc.render(), (
        "docs/agent-api.md is stale: python -m appliance.server.apidoc > docs/agent-api.md"
    )
    verbs = collect_verbs(AgentVerbs(agent=None))  # type: ignore[arg-type]
    assert set(verbs) == ISSUE_VERBS
    for name in verbs:
        assert f"### `{name}(" in doc


KERNEL_SPEC = {"name": "k1", "memory_mib": 128, "boot": {"kernel": "/boot/vmlinuz", "initrd": "/boot/initrd"}}


def test_spec_defaults_and_round_trip() -> None:
    spec = parse_vm_spec({**KERNEL_SPEC, "nics": [{"bridge": "xenbr0"}]})
    assert spec.vcpus == 1 and spec.on_crash == "destroy" and spec.nics[0].mac.startswith("02:")
    assert parse_vm_spec(spec.to_struct()) == spec


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": ""}, "name '' is not valid"),
        ({"memory_mib": 1}, "memory_mib must be from 16"),
        ({"boot": {"kernel": "relative"}}, "boot.kernel must be an absolute path"),
        ({"disks": [{"path": "/x", "format": "vmdk"}]}, "disks[0].format must be one of raw, qcow2"),
        ({"nics": [{"bridge": "br0", "network": "default"}]}, "nics[0] needs exactly one of"),
        ({"uuid": "nope"}, "uuid 'nope' is not a UUID"),
        ({"disks": [{"path": "/x"}] * 27}, "at most 26 allowed"),
    ],
)
def test_spec_errors_name_the_field(change: dict, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_vm_spec({**KERNEL_SPEC, **change})
    assert message in str(info.value)


def test_domain_xml_per_hypervisor() -> None:
    spec = parse_vm_spec(
        {
            **KERNEL_SPEC,
            "disks": [{"path": "/pool/a.img", "shareable": True}],
            "nics": [{"bridge": "br0"}],
            "console_log": "/var/log/k1.log",
        }
    )
    qemu = ET.fromstring(build_domain_xml(spec, Flavor("qemu", "tcg")))
    assert qemu.get("type") == "qemu" and qemu.findtext("os/type") == "hvm"
    assert qemu.find("features/acpi") is not None
    assert qemu.findtext("cpu/model") == "qemu64"
    assert qemu.find("devices/disk/driver").get("cache") == "none"  # type: ignore[union-attr]
    assert qemu.find("devices/disk/shareable") is not None
    assert qemu.find("devices/serial/source").get("path") == "/var/log/k1.log"  # type: ignore[union-attr]
    assert ET.fromstring(build_domain_xml(spec, Flavor("qemu", "kvm"))).get("type") == "kvm"
    pvh = ET.fromstring(build_domain_xml(spec, Flavor("xen")))
    assert pvh.get("type") == "xen" and pvh.findtext("os/type") == "xenpvh"
    assert pvh.find("devices/disk/target").get("dev") == "xvda"  # type: ignore[union-attr]
    assert pvh.find("devices/console/target").get("type") == "xen"  # type: ignore[union-attr]
    pv_disk = parse_vm_spec({"name": "p", "memory_mib": 64, "virt_type": "pv", "disks": [{"path": "/a"}]})
    pv = ET.fromstring(build_domain_xml(pv_disk, Flavor("xen")))
    assert pv.findtext("os/type") == "linux" and pv.findtext("bootloader") == "pygrub"
    with pytest.raises(SpecError):
        build_domain_xml(parse_vm_spec({**KERNEL_SPEC, "nics": [{"user": True}]}), Flavor("xen"))


def test_wire_format() -> None:
    call = b"<methodCall><methodName>x</methodName><params><param><value><int>5</int></value></param></params></methodCall>"
    assert rpcproto.parse_request(call, 8) == ("x", (5,))
    with pytest.raises(rpcproto.RequestRejected) as info:
        rpcproto.parse_request(call, 3)
    assert info.value.code == rpcproto.INVALID_REQUEST
    assert b"<double>" in rpcproto.dump_response({"big": 2**40})
    assert b"<int>7</int>" in rpcproto.dump_response(7)


def test_passwords() -> None:
    h = passwords.hash_password("s3cret")
    assert passwords.is_crypt_sha512(h) and h.startswith("$6$") and "rounds=" not in h
    verifier = passwords.PasswordVerifier()
    assert verifier.verify(h, "oracle", "s3cret") and verifier.verify(h, "oracle", "s3cret")
    assert not verifier.verify(h, "oracle", "wrong") and not verifier.verify(h, "root", "s3cret")
    assert not verifier.verify(None, "oracle", "s3cret")
    # A hash made by another crypt(3) implementation (openssl passwd -6 -salt abc x) verifies.
    openssl = "$6$abc$K4v3HcZ8yAmpRfxML6S46NCcqy9r4/KdbQpFvqSWsBf4dgySOEOo1DHJTrmn2BsJK2aNmPN8Tfb826D2o9.z51"
    assert passwords.is_crypt_sha512(openssl) and verifier.verify(openssl, "oracle", "x")
    assert passwords.parse_basic_auth("Basic b3JhY2xlOmE6Yg==") == ("oracle", "a:b")
    assert passwords.parse_basic_auth("Basic !!!") is None
    with pytest.raises(UsageError):
        passwords.check_crypted("$1$md5$notsha512")


def test_parse_listen_and_cpu_percent() -> None:
    assert parse_listen("0.0.0.0:8899") == ("0.0.0.0", 8899)
    assert parse_listen("[::1]:9") == ("::1", 9)
    assert parse_listen(":7") == ("0.0.0.0", 7)
    assert parse_listen("host") == ("host", 8899)
    for bad in ("::1:8", "h:99999", "[::1"):
        with pytest.raises(UsageError):
            parse_listen(bad)
    assert vm_cpu_percent(None, 10, 1.0, 1) == 0.0
    assert vm_cpu_percent((0, 0.0), 500_000_000, 1.0, 1) == pytest.approx(50.0)
    assert vm_cpu_percent((0, 0.0), 500_000_000, 1.0, 2) == pytest.approx(25.0)
