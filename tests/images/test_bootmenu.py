"""The boot menu: four entries, kickstart convention with the installer, BIOS and UEFI renderings."""

from __future__ import annotations

from appliance.images.bootmenu import (
    BootMenuInputs,
    build_menu,
    render_grub_cfg,
    render_grub_embedded_cfg,
    render_isolinux_cfg,
)

INPUTS = BootMenuInputs("appliance server", "APPLIANCE_SERVER_0_1_0", ("boot=live", "console=ttyS0,115200"))


def test_entries_and_default_without_kickstart() -> None:
    menu = build_menu(INPUTS, kickstart_embedded=False)
    assert [e.label for e in menu.entries] == [
        "Install appliance server",
        "Automatic install (kickstart)",
        "Rescue shell",
        "Boot from first disk",
    ]
    assert menu.default_key == "install" and menu.default_index == 0
    auto = menu.entries[1].kernel_args
    assert auto is not None and "inst.auto" in auto and not any(a.startswith("ks=") for a in auto)
    rescue = menu.entries[2].kernel_args
    assert rescue is not None and "systemd.unit=rescue.target" in rescue
    assert menu.entries[3].kernel_args is None


def test_embedded_kickstart_becomes_the_default() -> None:
    menu = build_menu(INPUTS, kickstart_embedded=True)
    assert menu.default_key == "auto" and menu.default_index == 1
    assert menu.entries[1].kernel_args == ("boot=live", "console=ttyS0,115200", "inst.auto", "ks=cdrom:/ks.cfg")


def test_isolinux_rendering() -> None:
    cfg = render_isolinux_cfg(build_menu(INPUTS, kickstart_embedded=True))
    assert "SERIAL 0 115200" in cfg and "DEFAULT auto" in cfg and "TIMEOUT 50" in cfg
    assert "APPEND initrd=/live/initrd.img boot=live console=ttyS0,115200 inst.auto ks=cdrom:/ks.cfg" in cfg
    assert "LOCALBOOT 0x80" in cfg
    assert [ln for ln in cfg.splitlines() if ln.startswith("LABEL ")] == [
        "LABEL install", "LABEL auto", "LABEL rescue", "LABEL local"
    ]


def test_grub_rendering() -> None:
    cfg = render_grub_cfg(build_menu(INPUTS, kickstart_embedded=False))
    assert "serial --unit=0 --speed=115200" in cfg and "terminal_output console serial" in cfg
    assert "set default=0" in cfg and cfg.count("menuentry ") == 4
    assert "linux /live/vmlinuz boot=live console=ttyS0,115200\n" in cfg
    assert "initrd /live/initrd.img" in cfg and "exit" in cfg
    embedded = render_grub_embedded_cfg("APPLIANCE_SERVER_0_1_0")
    assert "search --no-floppy --set=root --label APPLIANCE_SERVER_0_1_0" in embedded


def test_inputs_round_trip() -> None:
    assert BootMenuInputs.from_json(INPUTS.to_json()) == INPUTS
