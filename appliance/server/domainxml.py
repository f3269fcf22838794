"""VM spec → libvirt domain XML (pure). QEMU guests are HVM (TCG or KVM), Xen guests PV or PVH
(HVM on request), the test driver gets a minimal domain."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from appliance.server.vmspec import SpecError, VmSpec

DRIVERS = ("qemu", "xen", "test")


@dataclass(frozen=True)
class Flavor:
    """What kind of hypervisor the domain is for."""

    driver: str  # qemu | xen | test
    accel: str = "tcg"  # qemu only: tcg | kvm

    @property
    def default_virt_type(self) -> str:
        return "pvh" if self.driver == "xen" else "hvm"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _disk_target(flavor: Flavor, index: int, device: str) -> tuple[str, str]:
    letter = chr(ord("a") + index)
    if flavor.driver == "xen":
        return f"xvd{letter}", "xen"
    if device == "cdrom":
        return f"sd{letter}", "sata"
    return f"vd{letter}", "virtio"


def virt_type_for(spec: VmSpec, flavor: Flavor) -> str:
    virt = spec.virt_type or flavor.default_virt_type
    if flavor.driver != "xen" and virt != "hvm":
        raise SpecError(
            f"virt_type {virt!r} needs a Xen hypervisor; this server runs {flavor.driver}",
            "use virt_type hvm (or leave it empty) on QEMU servers",
        )
    if virt == "pvh" and spec.kernel_boot is None:
        raise SpecError("a PVH guest needs a boot kernel", "set boot.kernel (and boot.initrd)")
    return virt


def build_domain_xml(spec: VmSpec, flavor: Flavor) -> str:
    if flavor.driver not in DRIVERS:
        raise ValueError(f"unknown driver {flavor.driver}")
    virt = virt_type_for(spec, flavor)
    dom_type = flavor.driver
    if flavor.driver == "qemu":
        dom_type = "kvm" if flavor.accel == "kvm" else "qemu"
    dom = ET.Element("domain", {"type": dom_type})
    _sub(dom, "name", spec.name)
    _sub(dom, "uuid", spec.uuid)
    if spec.description:
        _sub(dom, "description", spec.description)
    _sub(dom, "memory", str(spec.memory_mib), unit="MiB")
    _sub(dom, "currentMemory", str(spec.memory_mib), unit="MiB")
    _sub(dom, "vcpu", str(spec.vcpus))

    os_el = _sub(dom, "os")
    if flavor.driver == "xen" and virt == "pv":
        _sub(os_el, "type", "linux", arch="x86_64", machine="xenpv")
    elif flavor.driver == "xen" and virt == "pvh":
        _sub(os_el, "type", "xenpvh", arch="x86_64", machine="xenpvh")
    elif flavor.driver == "test":
        _sub(os_el, "type", "hvm")
    else:
        _sub(os_el, "type", "hvm", arch="x86_64")
    if spec.kernel_boot is not None:
        _sub(os_el, "kernel", spec.kernel_boot.kernel)
        if spec.kernel_boot.initrd:
            _sub(os_el, "initrd", spec.kernel_boot.initrd)
        if spec.kernel_boot.cmdline:
            _sub(os_el, "cmdline", spec.kernel_boot.cmdline)
    elif virt == "pv":
        _sub(dom, "bootloader", "pygrub")
    elif virt == "hvm":
        _sub(os_el, "boot", dev="hd")

    if virt == "hvm" and flavor.driver != "test":
        features = _sub(dom, "features")
        _sub(features, "acpi")  # without ACPI a guest's poweroff never ends the VM
        _sub(features, "apic")
    if flavor.driver == "qemu" and flavor.accel == "tcg":
        cpu = _sub(dom, "cpu", mode="custom", match="exact")
        _sub(cpu, "model", "qemu64", fallback="allow")  # -cpu max is much slower under TCG
    elif flavor.driver == "qemu":
        _sub(dom, "cpu", mode="host-passthrough")

    _sub(dom, "clock", offset="utc")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", spec.on_crash)

    devices = _sub(dom, "devices")
    for index, disk in enumerate(spec.disks):
        el = _sub(devices, "disk", type="file", device=disk.device)
        driver_attrs = {"name": "qemu", "type": disk.format}
        if disk.shareable and flavor.driver == "qemu":
            driver_attrs["cache"] = "none"
        if flavor.driver != "test":
            _sub(el, "driver", **driver_attrs)
        _sub(el, "source", file=disk.path)
        dev, bus = _disk_target(flavor, index, disk.device)
        _sub(el, "target", dev=dev, bus=bus)
        if disk.readonly or disk.device == "cdrom":
            _sub(el, "readonly")
        if disk.shareable:
            _sub(el, "shareable")
    for nic in spec.nics:
        if nic.bridge:
            el = _sub(devices, "interface", type="bridge")
            _sub(el, "source", bridge=nic.bridge)
        elif nic.network:
            el = _sub(devices, "interface", type="network")
            _sub(el, "source", network=nic.network)
        else:
            if flavor.driver != "qemu":
                raise SpecError("user-mode networking (nics[].user) exists only on QEMU servers", None)
            el = _sub(devices, "interface", type="user")
        _sub(el, "mac", address=nic.mac)
        if flavor.driver == "qemu":
            _sub(el, "model", type=nic.model)
    if flavor.driver == "xen" and virt != "hvm":
        # PV/PVH guests talk to the Xen console (hvc0); libxl gives it a pty.
        console = _sub(devices, "console", type="pty")
        _sub(console, "target", type="xen", port="0")
    elif flavor.driver != "test":
        kind = "file" if spec.console_log else "pty"
        for tag in ("serial", "console"):
            el = _sub(devices, tag, type=kind)
            if spec.console_log:
                _sub(el, "source", path=spec.console_log, append="on")
            _sub(el, "target", port="0", **({"type": "serial"} if tag == "console" else {}))
    if flavor.driver == "qemu":
        _sub(devices, "memballoon", model="virtio")
    return ET.tostring(dom, encoding="unicode")
