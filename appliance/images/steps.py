"""The build steps: each one small, named by what it does, reading the frozen BuildContext."""

from __future__ import annotations

import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

import pycdlib

from appliance import live_medium
from appliance.errors import ApplianceError, ConfigError, ExternalCommandError, UsageError
from appliance.images import bytecode, cache, commands, gpt, hosttools
from appliance.images.bootmenu import (
    BootMenuInputs,
    build_menu,
    render_grub_cfg,
    render_grub_embedded_cfg,
    render_isolinux_cfg,
)
from appliance.images.config import BuildContext
from appliance.images.isowriter import IsoLayout, write_iso
from appliance.images.manifest import (
    BuildRecord,
    manifest,
    manifest_json,
    parse_dpkg_query,
    parse_pip_list,
    sha256_file,
    sha256sums,
)
from appliance.images.pipeline import Step
from appliance.images.runner import build_env, run
from appliance.images.spec import render_bootstrap_files, render_files

ISOLINUX_FILES = {
    "/usr/lib/ISOLINUX/isolinux.bin": "isolinux.bin",
    "/usr/lib/syslinux/modules/bios/ldlinux.c32": "ldlinux.c32",
    "/usr/lib/syslinux/modules/bios/menu.c32": "menu.c32",
    "/usr/lib/syslinux/modules/bios/libutil.c32": "libutil.c32",
    "/usr/lib/syslinux/modules/bios/libcom32.c32": "libcom32.c32",
}
BOOT_MARKER = "APPLIANCE-BOOT-OK"
VENV = "/opt/appliance"
APPLIANCE_BIN = "/usr/local/bin/appliance"
MIN_FREE_CACHE = 4 << 30
MIN_FREE_OUTPUT = 1 << 30
SOURCE_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "results", "state"
)


def _chroot_env(ctx: BuildContext) -> dict[str, str]:
    return build_env({"SOURCE_DATE_EPOCH": str(ctx.config.epoch), "DEBIAN_FRONTEND": "noninteractive"})


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


def _tree_size(root: Path) -> int:
    return live_medium.tree_bytes(root, skip_top=())


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _write_files(root: Path, files: dict[str, tuple[int, str]]) -> None:
    for path, (mode, text) in sorted(files.items()):
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
        dest.chmod(mode)


# ---------------------------------------------------------------- steps


def check_host(ctx: BuildContext, record: BuildRecord) -> str:
    hosttools.require(hosttools.BUILD_TOOLS, files=[*ISOLINUX_FILES, *hosttools.FILE_PACKAGES])
    if os.geteuid() != 0:
        raise ConfigError("the image build must run as root (mmdebstrap --mode=root, chroot)", hint="run as root")
    for path, need in ((ctx.config.cache_dir, MIN_FREE_CACHE), (ctx.config.output_dir, MIN_FREE_OUTPUT)):
        free = shutil.disk_usage(path).free
        if free < need:
            raise ApplianceError(
                f"not enough free disk space in {path}: {free >> 20} MiB free, {need >> 20} MiB needed",
                hint="free some space, or choose another directory with --cache / --output",
            )
    return f"{shutil.disk_usage(ctx.config.cache_dir).free >> 30} GiB free"


_NETWORK_ERRORS = ("Temporary failure resolving", "Could not resolve", "Failed to fetch", "Unable to connect")


def explain_bootstrap_failure(log_text: str, ctx: BuildContext) -> ApplianceError | None:
    """A user-facing error for the usual mmdebstrap failures (pure)."""
    missing = re.search(r"Unable to locate package (\S+)|Package '?([^' ]+)'? has no installation candidate", log_text)
    if missing:
        name = missing.group(1) or missing.group(2)
        return UsageError(
            f"package {name!r} of role {ctx.spec.name!r} is not available in Debian {ctx.config.suite}",
            hint=f"fix the package list in appliance/images/roles/ (role {ctx.spec.name})",
        )
    if "No space left on device" in log_text:
        return ApplianceError("the disk filled up during the bootstrap", hint="free space and rebuild")
    if any(s in log_text for s in _NETWORK_ERRORS):
        return ApplianceError(
            f"cannot download packages from the Debian archive ({ctx.config.mirror})",
            hint="check network access to the mirror (or pass --mirror); "
            "with a cached base (see --cache) a rebuild needs no download",
        )
    return None


def bootstrap(ctx: BuildContext, record: BuildRecord) -> str:
    key = cache.base_key(ctx.spec, ctx.config)
    tarball = cache.base_tarball(ctx.config.cache_dir, key)
    record.inputs["base"] = {"key": key, **cache.base_inputs(ctx.spec, ctx.config)}
    if tarball.exists() and not ctx.config.refresh_base:
        return f"cached base {key}"
    tarball.parent.mkdir(parents=True, exist_ok=True)
    ctx.debs_cache.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_name(tarball.name + ".partial")
    extra = {"TMPDIR": str(ctx.work_dir)}
    if ctx.config.source_date_epoch is not None:
        extra["SOURCE_DATE_EPOCH"] = str(ctx.config.source_date_epoch)
    env = build_env(extra, keep=("http_proxy", "https_proxy", "no_proxy"))
    files = render_bootstrap_files(ctx.spec)
    stage = ctx.work_dir / "bootstrap-files" if files else None
    if stage is not None:
        _write_files(stage, files)
    try:
        run(commands.mmdebstrap(ctx.spec, ctx.config, partial, ctx.debs_cache, stage), env=env,
            log_file=ctx.log_file, what="mmdebstrap")  # fmt: skip
    except ExternalCommandError as err:
        partial.unlink(missing_ok=True)
        explained = explain_bootstrap_failure(ctx.log_file.read_text(errors="replace"), ctx)
        raise (explained or err) from err
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, tarball)
    return f"bootstrapped {key}, {_mb(tarball.stat().st_size)}"


def unpack(ctx: BuildContext, record: BuildRecord) -> str:
    tarball = cache.base_tarball(ctx.config.cache_dir, cache.base_key(ctx.spec, ctx.config))
    ctx.rootfs.mkdir()
    run(commands.untar(tarball, ctx.rootfs), what="tar")
    return _mb(_tree_size(ctx.rootfs))


def minimise(ctx: BuildContext, record: BuildRecord) -> str:
    before = _tree_size(ctx.rootfs)
    remove_globs(ctx.rootfs, ctx.spec.remove_paths)
    modules = ctx.rootfs / "usr/lib/modules"
    for kdir in sorted(modules.iterdir()) if modules.is_dir() else []:
        for tree in ctx.spec.kernel_module_trim:
            target = kdir / "kernel" / tree
            if target.exists():
                shutil.rmtree(target)
        run(commands.chroot(ctx.rootfs, "depmod", "-a", kdir.name), env=_chroot_env(ctx), what="depmod")
    return f"{_mb(before)} -> {_mb(_tree_size(ctx.rootfs))}"


def remove_globs(root: Path, patterns: tuple[str, ...]) -> None:
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            _remove(path)


def prune_venv(ctx: BuildContext, record: BuildRecord, env: dict[str, str]) -> str:
    """Drop what only the build needed (pip, setuptools) and package files never loaded."""
    before = _tree_size(ctx.rootfs / VENV.lstrip("/"))
    if ctx.spec.venv_uninstall:
        run(commands.chroot(ctx.rootfs, *commands.venv_uninstall(VENV, list(ctx.spec.venv_uninstall))), env=env,
            what="pip uninstall (build-only packages)")  # fmt: skip
        gone = {name.lower() for name in ctx.spec.venv_uninstall}
        record.python_packages = [p for p in record.python_packages if p["name"].lower() not in gone]
    (site,) = (ctx.rootfs / VENV.lstrip("/")).glob("lib/python3*/site-packages")
    remove_globs(site, ctx.spec.venv_remove_paths)
    return f"; venv pruned {_mb(before)} -> {_mb(_tree_size(ctx.rootfs / VENV.lstrip('/')))}"


def wheel_requirements(wheel: Path) -> list[str]:
    """Requires-Dist of a wheel, without extras-only requirements (pure but for reading the zip)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    reqs = []
    for line in text.splitlines():
        if line.startswith("Requires-Dist:"):
            req = line.split(":", 1)[1].strip()
            if "extra ==" not in req.replace('extra=="', 'extra == "'):
                reqs.append(req)
    return reqs


def install_appliance(ctx: BuildContext, record: BuildRecord) -> str:
    if not ctx.spec.install_appliance:
        return "not part of this role"
    stage = ctx.work_dir / "wheels"
    source = ctx.work_dir / "source"
    shutil.copytree(ctx.config.source_dir, source, ignore=SOURCE_IGNORE, symlinks=True)
    # SOURCE_DATE_EPOCH makes the wheel's zip entries reproducible (its hash is in the manifest)
    wheel_env = {**os.environ, "SOURCE_DATE_EPOCH": str(ctx.config.epoch)}
    run(commands.pip_wheel_self(source, stage / "self", sys.executable), env=wheel_env, what="pip wheel (appliance)")
    (wheel,) = sorted((stage / "self").glob("appliance-*.whl"))
    record.inputs["appliance_wheel"] = {"name": wheel.name, "sha256": sha256_file(wheel)}
    env = _chroot_env(ctx)
    in_root = ctx.rootfs / "tmp/appliance-wheels"
    run(commands.chroot(ctx.rootfs, *commands.venv_create(VENV, ctx.spec.system_site_packages)), env=env,
        what="python3 -m venv")  # fmt: skip
    install = commands.chroot(
        ctx.rootfs,
        *commands.venv_install_offline(
            VENV, ["/tmp/appliance-wheels/self", "/tmp/appliance-wheels/deps"], f"appliance=={ctx.config.version}"
        ),
    )
    ctx.wheels_cache.mkdir(parents=True, exist_ok=True)
    note = "dependencies from the wheel cache"
    for attempt in (1, 2):
        shutil.rmtree(in_root, ignore_errors=True)
        shutil.copytree(stage / "self", in_root / "self")
        shutil.copytree(ctx.wheels_cache, in_root / "deps")
        try:
            run(install, env=env, what="pip install (in the image)")
            break
        except ExternalCommandError:
            if attempt == 2:
                raise
            # the cache lacks a dependency: fetch or build the wheels on the host (same Python 3.11)
            note = "dependencies fetched from PyPI into the wheel cache"
            run(commands.pip_wheel_deps(wheel_requirements(wheel), ctx.wheels_cache, sys.executable),
                what="pip wheel (dependencies)", hint="PyPI must be reachable to fill the wheel cache")  # fmt: skip
    shutil.rmtree(in_root)
    listing = run(commands.chroot(ctx.rootfs, f"{VENV}/bin/pip", "list", "--format=json", "--disable-pip-version-check"),
                  env=env)  # fmt: skip
    record.python_packages = parse_pip_list(listing)
    note += prune_venv(ctx, record, env)
    link = ctx.rootfs / APPLIANCE_BIN.lstrip("/")
    link.parent.mkdir(parents=True, exist_ok=True)
    _remove(link)
    link.symlink_to(f"{VENV}/bin/appliance")
    return note


def configure(ctx: BuildContext, record: BuildRecord) -> str:
    variables = {
        "version": ctx.config.version,
        "volume_id": ctx.config.volume_id,
        "appliance_bin": APPLIANCE_BIN,
        "marker": BOOT_MARKER,
    }
    files = render_files(ctx.spec, variables)
    _write_files(ctx.rootfs, files)
    if ctx.spec.enable_services:
        run(commands.chroot(ctx.rootfs, "systemctl", "enable", *ctx.spec.enable_services), env=_chroot_env(ctx),
            what="systemctl enable")  # fmt: skip
    if ctx.spec.mask_services:
        run(commands.chroot(ctx.rootfs, "systemctl", "mask", *ctx.spec.mask_services), env=_chroot_env(ctx),
            what="systemctl mask")  # fmt: skip
    # made at first boot by systemd; an empty file marks the image as "not yet booted"
    (ctx.rootfs / "etc/machine-id").write_text("")
    for pattern in ("var/lib/dbus/machine-id", "etc/ssh/ssh_host_*"):
        for found in ctx.rootfs.glob(pattern):
            _remove(found)
    return f"{len(files)} files, {len(ctx.spec.enable_services)} services, {len(ctx.spec.mask_services)} masked"


def hash_bytecode(ctx: BuildContext, record: BuildRecord) -> str:
    sources = bytecode.timestamp_checked_sources(ctx.rootfs)
    if not sources:
        return "none to rewrite"
    listing = ctx.rootfs / "tmp/appliance-bytecode.list"
    listing.write_text("".join(f"/{src.relative_to(ctx.rootfs)}\n" for src in sources))
    try:
        run(commands.chroot(ctx.rootfs, *commands.compile_bytecode(f"/{listing.relative_to(ctx.rootfs)}")),
            env=_chroot_env(ctx), what="python3 -m compileall")  # fmt: skip
    finally:
        listing.unlink()
    return f"{len(sources)} .pyc files rewritten hash-checked (the squashfs gives every file one mtime)"


def record_packages(ctx: BuildContext, record: BuildRecord) -> str:
    fmt = "${Package}\t${Version}\t${Architecture}\n"
    out = run(commands.chroot(ctx.rootfs, "dpkg-query", "-W", "-f", fmt), env=_chroot_env(ctx))
    record.packages = parse_dpkg_query(out)
    return f"{len(record.packages)} packages"


def kernel_files(ctx: BuildContext, record: BuildRecord) -> str:
    kernels = sorted((ctx.rootfs / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise ConfigError(
            f"expected exactly one kernel in the image, found {[k.name for k in kernels]}",
            hint="the role spec must install exactly one linux-image package",
        )
    version = kernels[0].name.removeprefix("vmlinuz-")
    live = ctx.iso_tree / "live"
    live.mkdir(parents=True)
    # moved, not copied: one copy on the ISO; the installer puts it back into the target's /boot
    os.replace(kernels[0], live / "vmlinuz")
    os.replace(ctx.rootfs / f"boot/initrd.img-{version}", live / "initrd.img")
    record.kernel_version = version
    return f"{version}, {_mb((live / 'vmlinuz').stat().st_size + (live / 'initrd.img').stat().st_size)}"


def squashfs(ctx: BuildContext, record: BuildRecord) -> str:
    out = ctx.iso_tree / live_medium.SQUASHFS
    live_medium.size_file(out).write_text(f"{live_medium.tree_bytes(ctx.rootfs)}\n", encoding="ascii")
    env = build_env()  # times come from -all-time/-mkfs-time (mksquashfs refuses both ways at once)
    run(commands.mksquashfs(ctx.rootfs, out, ctx.config.compression, ctx.config.epoch), env=env, what="mksquashfs")
    return f"{ctx.config.compression.label}, {_mb(out.stat().st_size)}"


def menu_inputs(ctx: BuildContext) -> BootMenuInputs:
    return BootMenuInputs(title=ctx.spec.menu_title, volume_id=ctx.config.volume_id,
                          kernel_args=ctx.spec.kernel_args)  # fmt: skip


def boot_files(ctx: BuildContext, record: BuildRecord) -> str:
    tree = ctx.iso_tree
    isolinux = tree / "isolinux"
    isolinux.mkdir(parents=True)
    for src, name in ISOLINUX_FILES.items():
        shutil.copyfile(src, isolinux / name)
    inputs = menu_inputs(ctx)
    menu = build_menu(inputs, kickstart_embedded=False)
    (isolinux / "isolinux.cfg").write_text(render_isolinux_cfg(menu))
    grub_dir = tree / "boot/grub"
    grub_dir.mkdir(parents=True)
    (grub_dir / "grub.cfg").write_text(render_grub_cfg(menu))
    disk = tree / ".disk"
    disk.mkdir()
    (disk / "appliance-boot.json").write_text(inputs.to_json())
    (disk / "info").write_text(f"appliance {ctx.spec.name} {ctx.config.version}\n")
    efi_size = make_efi_image(ctx, grub_dir / "efi.img")
    return f"isolinux + GRUB EFI ({efi_size >> 10} KiB FAT image)"


def make_efi_image(ctx: BuildContext, image: Path) -> int:
    """FAT image holding GRUB as /EFI/BOOT/BOOTX64.EFI, with fixed ids and times."""
    embedded = ctx.work_dir / "grub-embedded.cfg"
    embedded.write_text(render_grub_embedded_cfg(ctx.config.volume_id))
    efi = ctx.work_dir / "BOOTX64.EFI"
    run(commands.grub_mkimage_efi(efi, embedded), what="grub-mkimage")
    os.utime(efi, (ctx.config.epoch, ctx.config.epoch))
    size_mib = (efi.stat().st_size + (512 << 10)) // (1 << 20) + 1
    with open(image, "wb") as fp:
        fp.truncate(size_mib << 20)
    env = build_env({"SOURCE_DATE_EPOCH": str(ctx.config.epoch)})
    run(commands.mkfs_fat(image, "APPLIANCE"), env=env, what="mkfs.fat")
    run(commands.mtools_mkdir(image, "/EFI"), env=env, what="mmd")
    run(commands.mtools_mkdir(image, "/EFI/BOOT"), env=env, what="mmd")
    run(commands.mtools_copy(image, efi, "/EFI/BOOT/BOOTX64.EFI"), env=env, what="mcopy")
    return image.stat().st_size


def iso_layout(volume_id: str, epoch: int) -> IsoLayout:
    return IsoLayout(volume_id=volume_id, epoch=epoch, seed=f"{volume_id}:{epoch}")


def write_image(ctx: BuildContext, record: BuildRecord) -> str:
    ctx.config.output_dir.mkdir(parents=True, exist_ok=True)
    write_iso(ctx.iso_tree, ctx.iso_tmp, iso_layout(ctx.config.volume_id, ctx.config.epoch))
    return _mb(ctx.iso_tmp.stat().st_size)


def fix_gpt(ctx: BuildContext, record: BuildRecord) -> str:
    return normalise_and_check_gpt(ctx.iso_tmp, iso_layout(ctx.config.volume_id, ctx.config.epoch).seed)


def normalise_and_check_gpt(path: Path, seed: str) -> str:
    with open(path, "r+b") as fp:
        gpt.normalise(fp, seed)
        result = gpt.check(fp)
    if result.problems:
        raise ApplianceError(f"the GPT of {path} is still invalid: {'; '.join(result.problems)}")
    return "GUIDs derived, CRCs recomputed, verified"


def publish(ctx: BuildContext, record: BuildRecord) -> str:
    cfg = ctx.config
    digest = sha256_file(ctx.iso_tmp)
    record.artifacts[cfg.iso_name] = {"sha256": digest, "size": ctx.iso_tmp.stat().st_size}
    manifest_path = cfg.output_dir / f"appliance-{cfg.role}-{cfg.version}.manifest.json"
    sums_path = cfg.output_dir / f"{cfg.iso_name}.sha256"
    text = manifest_json(manifest(cfg.role, cfg.version, record))
    _write_atomic(manifest_path, text)
    _write_atomic(sums_path, sha256sums({cfg.iso_name: digest, manifest_path.name: sha256_file(manifest_path)}))
    os.replace(ctx.iso_tmp, ctx.iso_path)
    return str(ctx.iso_path)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text)
    os.replace(tmp, path)


STEPS = (
    Step("check-host", "host tools, root, free disk space", check_host),
    Step("bootstrap", "Debian base with mmdebstrap (cached)", bootstrap),
    Step("unpack", "unpack the base root filesystem", unpack),
    Step("minimise", "drop docs, logs, host identity, unused kernel modules", minimise),
    Step("install-appliance", "our package in a venv at /opt/appliance", install_appliance),
    Step("configure", "role files and services", configure),
    Step("bytecode", "Python bytecode valid without source mtimes", hash_bytecode),
    Step("packages", "record installed packages", record_packages),
    Step("kernel", "move the kernel and initrd out of the root to /live", kernel_files),
    Step("squashfs", "compress the root filesystem", squashfs),
    Step("boot-files", "isolinux (BIOS), GRUB EFI image (UEFI), boot menus", boot_files),
    Step("iso", "write the hybrid ISO with pycdlib", write_image),
    Step("gpt", "fix the isohybrid GPT (GUIDs, CRCs)", fix_gpt),
    Step("publish", "manifest, .sha256, move the ISO into place", publish),
)

PYCDLIB_VERSION = getattr(pycdlib, "__version__", "")
