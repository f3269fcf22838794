"""The live ISO's boot menu (pure): one model rendered to isolinux (BIOS) and GRUB (UEFI) configs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from appliance.images.spec import template_env

KERNEL = "/live/vmlinuz"
INITRD = "/live/initrd.img"
KICKSTART_ISO_PATH = "/ks.cfg"
# the installer reads these from /proc/cmdline (contract with appliance/installer)
AUTO_INSTALL_ARGS = ("inst.auto",)
EMBEDDED_KS_ARG = "ks=cdrom:/ks.cfg"
RESCUE_ARGS = ("systemd.unit=rescue.target", "systemd.setenv=SYSTEMD_SULOGIN_FORCE=1")


@dataclass(frozen=True)
class MenuEntry:
    key: str
    label: str
    kernel_args: tuple[str, ...] | None  # None: boot from the first disk instead


@dataclass(frozen=True)
class BootMenuInputs:
    """What the menu is made from; stored on the ISO so `iso embed-ks` can re-render it."""

    title: str
    volume_id: str
    kernel_args: tuple[str, ...]
    timeout_s: int = 5

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BootMenuInputs:
        data = json.loads(text)
        return cls(
            title=data["title"],
            volume_id=data["volume_id"],
            kernel_args=tuple(data["kernel_args"]),
            timeout_s=int(data["timeout_s"]),
        )


@dataclass(frozen=True)
class BootMenu:
    title: str
    entries: tuple[MenuEntry, ...]
    default_key: str
    timeout_s: int
    kernel: str = KERNEL
    initrd: str = INITRD

    @property
    def default_index(self) -> int:
        return [e.key for e in self.entries].index(self.default_key)


def build_menu(inputs: BootMenuInputs, *, kickstart_embedded: bool) -> BootMenu:
    base = inputs.kernel_args
    auto = (*base, *AUTO_INSTALL_ARGS, *((EMBEDDED_KS_ARG,) if kickstart_embedded else ()))
    entries = (
        MenuEntry("install", f"Install {inputs.title}", base),
        MenuEntry("auto", "Automatic install (kickstart)", auto),
        MenuEntry("rescue", "Rescue shell", (*base, *RESCUE_ARGS)),
        MenuEntry("local", "Boot from first disk", None),
    )
    return BootMenu(
        title=inputs.title,
        entries=entries,
        default_key="auto" if kickstart_embedded else "install",
        timeout_s=inputs.timeout_s,
    )


def render_isolinux_cfg(menu: BootMenu) -> str:
    return template_env().get_template("isolinux.cfg.j2").render(menu=menu)


def render_grub_cfg(menu: BootMenu) -> str:
    return template_env().get_template("grub.cfg.j2").render(menu=menu)


def render_grub_embedded_cfg(volume_id: str) -> str:
    """Config built into BOOTX64.EFI: find the ISO by its label, then load its grub.cfg."""
    return template_env().get_template("grub-embedded.cfg.j2").render(volume_id=volume_id)
