"""GRUB for BIOS (core.img in the BIOS boot partition) and UEFI (removable path), and grub.cfg."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ConfigError

# Options that belong on Xen's line, not dom0's kernel line (Oracle kickstarts put dom0_mem in --append).
_XEN_OPTION_PREFIXES = ("dom0_", "com1=", "com2=", "loglvl=", "guest_loglvl=", "iommu=", "sched=",
                        "smt=", "console_timestamps=", "conring_size=", "ucode=", "xsave=")
DEFAULT_XEN_OPTIONS = ("dom0_mem=1024M,max:1024M", "console=com1,vga", "com1=115200,8n1")
DEFAULT_KERNEL_OPTIONS = ("console=tty0", "console=ttyS0,115200n8")

GRUB_CFG = """\
# Written by the appliance installer.
set default={{ default }}
set timeout=5
serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1
terminal_input console serial
terminal_output console serial
insmod part_gpt
insmod ext2
search --no-floppy --fs-uuid --set=root {{ boot_uuid }}
{% if xen %}
menuentry 'Appliance {{ role }} (Xen {{ xen_name }})' --id xen {
	insmod multiboot2
	multiboot2 {{ prefix }}/{{ xen }} {{ xen_options }}
	module2 {{ prefix }}/{{ kernel }} root=UUID={{ root_uuid }} ro console=hvc0 {{ dom0_options }}
	module2 {{ prefix }}/{{ initrd }}
}
{% endif %}
menuentry 'Appliance {{ role }} (Linux{{ ", rescue" if xen else "" }})' --id linux {
	linux {{ prefix }}/{{ kernel }} root=UUID={{ root_uuid }} ro {{ kernel_options }}
	initrd {{ prefix }}/{{ initrd }}
}
"""


@dataclass(frozen=True)
class BootFiles:
    kernel: str  # file names inside /boot
    initrd: str
    xen: str | None


def _version_key(name: str) -> list[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def find_boot_files(boot_dir: Path, want_xen: bool) -> BootFiles:
    kernels = sorted((p.name for p in boot_dir.glob("vmlinuz-*")), key=_version_key)
    if not kernels:
        raise ConfigError(f"no kernel (vmlinuz-*) in {boot_dir} of the copied system",
                          "the live image must carry its kernel in /boot; rebuild it")
    kernel = kernels[-1]
    initrd = "initrd.img-" + kernel.removeprefix("vmlinuz-")
    if not (boot_dir / initrd).exists():
        raise ConfigError(f"no {initrd} next to {kernel} in {boot_dir}", "rebuild the image with its initramfs")
    xen = None
    if want_xen:
        candidates = sorted((p.name for p in boot_dir.glob("xen-*.gz")), key=_version_key)
        if not candidates and (boot_dir / "xen.gz").exists():
            candidates = ["xen.gz"]
        if not candidates:
            raise ConfigError(f"the server image has no Xen hypervisor (xen-*.gz) in {boot_dir}",
                              "rebuild the server image with xen-system-amd64")
        xen = candidates[-1]
    return BootFiles(kernel=kernel, initrd=initrd, xen=xen)


def split_append(append: str) -> tuple[list[str], list[str]]:
    """Kickstart ``bootloader --append`` words -> (Xen options, kernel options)."""
    xen: list[str] = []
    kernel: list[str] = []
    for word in append.split():
        (xen if word.startswith(_XEN_OPTION_PREFIXES) or word.startswith("console=com") else kernel).append(word)
    return xen, kernel


def render_grub_cfg(*, role: str, files: BootFiles, root_uuid: str, boot_uuid: str, boot_is_root: bool,
                    append: str) -> str:
    xen_extra, kernel_extra = split_append(append)
    xen_options = [o for o in DEFAULT_XEN_OPTIONS
                   if not any(x.split("=")[0] == o.split("=")[0] for x in xen_extra)] + xen_extra
    kernel_options = list(DEFAULT_KERNEL_OPTIONS) + [
        k for k in kernel_extra if k not in DEFAULT_KERNEL_OPTIONS]
    dom0_options = [k for k in kernel_extra if not k.startswith("console=")]
    import jinja2  # here, not at the top: the live installer's first prompt should not wait for it

    template = jinja2.Template(GRUB_CFG, trim_blocks=True, lstrip_blocks=False, keep_trailing_newline=True)
    return template.render(
        default="xen" if files.xen else "linux", role=role, xen=files.xen,
        xen_name=(files.xen or "").removeprefix("xen-").removesuffix(".gz"),
        kernel=files.kernel, initrd=files.initrd, root_uuid=root_uuid, boot_uuid=boot_uuid,
        prefix="/boot" if boot_is_root else "", xen_options=" ".join(xen_options),
        dom0_options=" ".join(dom0_options), kernel_options=" ".join(kernel_options),
    )


def grub_install_bios(disk: str, target: Path) -> list[str]:
    return ["grub-install", "--target=i386-pc", f"--boot-directory={target / 'boot'}",
            "--modules=part_gpt ext2", disk]


# UEFI: GRUB's EFI image is made with grub-mkimage and written into the FAT filesystem with mtools,
# so the EFI system partition never needs a kernel vfat mount (containers and minimal kernels lack it).
# It is the removable-media path (EFI/BOOT/BOOTX64.EFI) every UEFI firmware boots without NVRAM entries.
GRUB_EFI_MODULES_DIR = Path("/usr/lib/grub/x86_64-efi")
EFI_IMAGE_MODULES = (
    "part_gpt", "part_msdos", "fat", "ext2", "search", "search_fs_uuid", "search_label", "normal",
    "configfile", "linux", "multiboot2", "boot", "echo", "test", "ls", "cat", "gzio", "serial",
    "terminal", "all_video", "efi_gop", "efi_uga", "gfxterm", "reboot", "halt",
)


def render_efi_early_cfg(boot_uuid: str, boot_is_root: bool) -> str:
    grub_dir = "/boot/grub" if boot_is_root else "/grub"
    return (f"search --no-floppy --fs-uuid --set=root {boot_uuid}\n"
            f"set prefix=($root){grub_dir}\n"
            "configfile $prefix/grub.cfg\n")


def grub_mkimage_efi(output: Path, early_cfg: Path, prefix: str) -> list[str]:
    return ["grub-mkimage", "--format=x86_64-efi", f"--output={output}", f"--config={early_cfg}",
            f"--prefix={prefix}", *EFI_IMAGE_MODULES]


def mcopy_into_fat(device: str, source_dir: Path) -> list[str]:
    """Copy ``source_dir``'s top-level entries into the root of the FAT filesystem on ``device``."""
    return ["mcopy", "-s", "-o", "-i", device, *[str(p) for p in sorted(source_dir.iterdir())], "::/"]
