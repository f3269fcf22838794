"""What the manager asks an agent to define, from a VM row and the server's reported hardware."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.manager.vms import agent_spec, hypervisor_driver

ROW: dict[str, Any] = {
    "id": "4454e387-74d5-4fd2-93d9-3a5029ded71c",
    "name": "tiny1",
    "vcpus": 1,
    "memory_mib": 128,
    "domain_type": "pv",
    "description": None,
    "ha": False,
    "nics": [],
    "disks": [],
    "repository_id": None,
    "boot": {"kernel": "/vmlinuz", "initrd": "/guest.cpio.gz", "cmdline": "console=hvc0"},
}


@pytest.mark.parametrize(
    ("reported", "virt_type"), [("Xen", "pv"), ("xen", "pv"), ("QEMU", "hvm"), ("", "hvm")]
)
def test_xen_servers_get_the_vms_domain_type(reported: str, virt_type: str) -> None:
    # libvirt's getType() says "Xen": a PV guest sent as "hvm" fails on a Xen host without VT-x
    hardware = {"hypervisor": {"driver": reported}} if reported else None
    assert agent_spec(ROW, hypervisor_driver(hardware))["virt_type"] == virt_type
