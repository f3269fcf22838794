"""Command lines of the image build (pure): built as lists from the frozen config and role spec."""

from __future__ import annotations

from pathlib import Path

from appliance.images.config import BuildConfig, Compression
from appliance.images.spec import RoleSpec

GRUB_EFI_MODULES = (
    "part_gpt", "part_msdos", "iso9660", "fat", "search", "search_label", "search_fs_file",
    "configfile", "normal", "linux", "echo", "test", "ls", "cat", "serial", "terminal",
    "efi_gop", "all_video", "gfxterm", "chain", "boot", "multiboot2", "gzio", "xzio", "reboot", "halt",
)  # fmt: skip


def mmdebstrap(
    spec: RoleSpec, config: BuildConfig, target: Path, debs_cache: Path, bootstrap_files: Path | None = None
) -> list[str]:
    """Bootstrap the role's Debian root into a tarball; .debs are synced to and from the cache.

    ``bootstrap_files``: a directory copied into the root after the essential packages, before the
    role's packages are installed (so e.g. an initramfs-tools hook shapes the first initrd).
    """
    cmd = [
        "mmdebstrap",
        f"--variant={spec.variant}",
        "--mode=root",
        "--format=tar",
        "--architectures=amd64",
        f"--include={','.join(spec.packages)}",
        "--aptopt=Acquire::Retries \"3\"",
        "--aptopt=APT::Install-Recommends \"false\"",
        "--skip=essential/unlink",
    ]
    cmd += [f"--dpkgopt=path-exclude={p}" for p in spec.dpkg_path_excludes]
    cmd += [f"--dpkgopt=path-include={p}" for p in spec.dpkg_path_includes]
    cmd += [
        '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
        f"--setup-hook=sync-in {debs_cache} /var/cache/apt/archives/",
        *([f"--essential-hook=sync-in {bootstrap_files} /"] if bootstrap_files else []),
        f"--customize-hook=sync-out /var/cache/apt/archives {debs_cache}",
        # host identity never enters the image
        '--customize-hook=rm -f "$1"/etc/resolv.conf "$1"/etc/hostname',
        config.suite,
        str(target),
        *config.apt_sources,
    ]
    return cmd


def untar(archive: Path, dest: Path) -> list[str]:
    return ["tar", "-C", str(dest), "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", str(archive)]


def chroot(root: Path, *argv: str) -> list[str]:
    return ["chroot", str(root), *argv]


def compile_bytecode(source_list: str) -> list[str]:
    """Rewrite the .pyc of each source named in ``source_list`` as hash-checked bytecode (PEP 552)."""
    return ["python3", "-m", "compileall", "-q", "-f", "--invalidation-mode", "checked-hash", "-i", source_list]


def mksquashfs(root: Path, out: Path, compression: Compression, epoch: int) -> list[str]:
    """Every inode gets ``epoch`` as its time; entries are sorted, so the image is reproducible."""
    return [
        "mksquashfs", str(root), str(out), "-noappend", "-no-progress", "-quiet",
        *compression.mksquashfs_args(),
        "-all-time", str(epoch), "-mkfs-time", str(epoch),
        "-wildcards", "-e", "proc/*", "sys/*", "dev/pts/*", "run/*", "tmp/*",
    ]  # fmt: skip


def grub_mkimage_efi(out: Path, embedded_cfg: Path) -> list[str]:
    return [
        "grub-mkimage", "-O", "x86_64-efi", "-o", str(out), "-p", "/boot/grub", "-c", str(embedded_cfg),
        *GRUB_EFI_MODULES,
    ]  # fmt: skip


def mkfs_fat(image: Path, label: str) -> list[str]:
    """FAT with fixed volume id and times (--invariant) for reproducibility; image must exist."""
    return ["mkfs.fat", "--invariant", "-i", "A9911A00", "-n", label[:11], str(image)]


def mtools_mkdir(image: Path, path: str) -> list[str]:
    return ["mmd", "-i", str(image), f"::{path}"]


def mtools_copy(image: Path, src: Path, path: str) -> list[str]:
    return ["mcopy", "-m", "-i", str(image), str(src), f"::{path}"]


def pip_wheel_self(source: Path, wheel_dir: Path, python: str) -> list[str]:
    return [python, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheel_dir), str(source)]


def pip_wheel_deps(requirements: list[str], wheel_dir: Path, python: str) -> list[str]:
    """Fetch (or build) wheels of our dependencies into the cache; cached ones are reused."""
    return [
        python, "-m", "pip", "wheel", "--quiet", "--prefer-binary",
        "--wheel-dir", str(wheel_dir), "--find-links", str(wheel_dir), *requirements,
    ]  # fmt: skip


def venv_create(venv: str, system_site_packages: bool) -> list[str]:
    return ["python3", "-m", "venv", *(["--system-site-packages"] if system_site_packages else []), venv]


def venv_uninstall(venv: str, packages: list[str]) -> list[str]:
    return [f"{venv}/bin/python", "-m", "pip", "uninstall", "--yes", "--quiet", "--disable-pip-version-check", *packages]


def venv_install_offline(venv: str, find_links: list[str], requirement: str) -> list[str]:
    links = [arg for d in find_links for arg in ("--find-links", d)]
    return [
        f"{venv}/bin/pip", "install", "--quiet", "--no-index", "--no-cache-dir",
        "--disable-pip-version-check", *links, requirement,
    ]  # fmt: skip
