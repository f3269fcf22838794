"""The install itself: a sequence of steps with progress, a cleanup stack and a log.

Every step that mounts or binds something pushes its undo on the cleanup stack; the stack is
unwound whether the install succeeds or fails, so running the install again is always safe.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from appliance.errors import ApplianceError, ConfigError, UsageError
from appliance.installer import bootloader, copy_system, live_kernel, roles, target_config
from appliance.installer.answers import Answers, Script
from appliance.installer.cleanup import CleanupStack
from appliance.installer.disks import Disk, partitions_in_use
from appliance.installer.layout import Layout, plan_layout, render_fstab
from appliance.installer.runner import InstallLog, run
from appliance.installer.sources import LIVE_MEDIUM
from appliance.live_medium import recorded_size, tree_bytes

PARTITION_WAIT_S = 10.0


class InstallFailed(ApplianceError):
    """A step failed; the message names the step and where the log is."""


@dataclass
class InstallContext:
    answers: Answers
    disk: Disk
    layout: Layout
    source_root: Path
    log: InstallLog
    cleanup: CleanupStack
    say: Callable[[str], None]
    medium: Path = LIVE_MEDIUM  # the live medium: the kernel and initrd come from its /live
    source_image: Path | None = None  # the squashfs image source_root is mounted from, if any
    target: Path = Path()
    uuids: dict[int, str] = field(default_factory=dict)

    def run(self, cmd: list[str], **kwargs: object) -> None:
        run(cmd, self.log, **kwargs)  # type: ignore[arg-type]


Step = tuple[str, int, Callable[[InstallContext], None]]


def source_size_mib(source_root: Path, extra_bytes: int = 0, image: Path | None = None) -> int:
    """Space the copied system needs: its size (plus ``extra_bytes``), 15% and 64 MiB for logs and state.

    The size comes from the image's size file when there is one (walking a squashfs under TCG is slow).
    """
    size = (recorded_size(image) if image is not None else None) or tree_bytes(source_root)
    return int((size + extra_bytes) / (1024 * 1024) * 1.15) + 64


def check_target(disk: Disk) -> None:
    """Refuse a disk that has anything mounted (the running system, a forgotten mount)."""
    busy = partitions_in_use(disk)
    if busy:
        raise UsageError(f"{disk.path} is in use: {', '.join(busy)} mounted",
                         "unmount them, or choose another disk; nothing was changed")


def make_plan(answers: Answers, disk: Disk, source_root: Path, medium: Path = LIVE_MEDIUM,
              image: Path | None = None) -> Layout:
    live = live_kernel.from_medium(source_root, medium)
    extra = live.size if live else 0
    return plan_layout(answers, disk.path, disk.size_bytes,
                       min_root_mib=source_size_mib(source_root, extra, image))


# --- steps ------------------------------------------------------------------------------------------


def _run_scripts(ctx: InstallContext, kind: str) -> None:
    scripts = [s for s in ctx.answers.scripts if s.kind == kind]
    for index, script in enumerate(scripts, start=1):
        _run_script(ctx, script, index)


def _run_script(ctx: InstallContext, script: Script, index: int) -> None:
    label = f"%{script.kind} (kickstart line {script.line})"
    env = dict(os.environ, APPLIANCE_TARGET=str(ctx.target))
    if script.kind == "post" and script.in_chroot:
        rel = f"tmp/appliance-ks-{script.kind}-{index}"
        path = ctx.target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(script.body, encoding="utf-8")
        cmd = ["chroot", str(ctx.target), script.interpreter, "/" + rel]
    else:
        with tempfile.NamedTemporaryFile("w", suffix=f"-ks-{script.kind}", delete=False) as handle:
            handle.write(script.body)
        path = Path(handle.name)
        cmd = [script.interpreter, str(path)]
    try:
        proc = run(cmd, ctx.log, check=False, env=env)
    finally:
        path.unlink(missing_ok=True)
    if proc.returncode != 0:
        if script.error_on_fail:
            raise ConfigError(f"{label} failed with exit {proc.returncode} (--erroronfail)",
                              f"fix the script; its output is in {ctx.log.path}")
        ctx.say(f"warning: {label} exited {proc.returncode}; going on (add --erroronfail to stop instead)")


def step_pre_scripts(ctx: InstallContext) -> None:
    _run_scripts(ctx, "pre")


def _wait_for_partitions(ctx: InstallContext) -> None:
    devices = [p.device(ctx.disk.path) for p in ctx.layout.partitions]
    deadline = time.monotonic() + PARTITION_WAIT_S
    rescanned = False
    while not all(Path(d).exists() for d in devices):
        if not rescanned:
            run(["partx", "-u", ctx.disk.path], ctx.log, check=False)
            rescanned = True
        if time.monotonic() > deadline:
            missing = [d for d in devices if not Path(d).exists()]
            raise ConfigError(f"partition devices did not appear: {', '.join(missing)}",
                              "is udev running? try 'partx -u DISK' and run the install again")
        time.sleep(0.1)
    if shutil.which("udevadm"):
        run(["udevadm", "settle", "--timeout=10"], ctx.log, check=False)


def step_partition(ctx: InstallContext) -> None:
    check_target(ctx.disk)
    ctx.run(["wipefs", "--all", "--force", ctx.disk.path])
    ctx.run(["sfdisk", "--quiet", "--wipe", "always", "--wipe-partitions", "always", ctx.disk.path],
            input_text=ctx.layout.sfdisk_script())
    _wait_for_partitions(ctx)


def step_filesystems(ctx: InstallContext) -> None:
    for part in ctx.layout.partitions:
        if part.fstype is None:
            continue
        device = part.device(ctx.disk.path)
        ctx.run(["wipefs", "--all", "--force", device])
        if part.fstype == "vfat":
            ctx.run(["mkfs.vfat", "-F", "32", "-n", part.label or "EFI", device])
        elif part.fstype == "swap":
            ctx.run(["mkswap", "-L", part.label or "swap", device])
        else:
            ctx.run([f"mkfs.{part.fstype}", "-F", "-q", "-L", part.label[:16], device])
        proc = run(["blkid", "-p", "-s", "UUID", "-o", "value", device], ctx.log)
        ctx.uuids[part.number] = proc.stdout.strip()


def _mount(ctx: InstallContext, args: list[str], where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    ctx.run(["mount", *args, str(where)])
    ctx.cleanup.push(f"unmount {where}", lambda: run(["umount", str(where)], ctx.log))


def step_mount(ctx: InstallContext) -> None:
    ctx.target = Path(tempfile.mkdtemp(prefix="appliance-target-"))
    target = ctx.target
    ctx.cleanup.push(f"remove {target}", lambda: target.rmdir())
    for part in ctx.layout.mounted():
        assert part.mountpoint is not None
        where = target / part.mountpoint.lstrip("/")
        if part.fstype == "vfat":
            continue  # the ESP is written with mtools (see _install_grub_efi), never mounted
        _mount(ctx, [part.device(ctx.disk.path)], where)


def step_copy(ctx: InstallContext) -> None:
    image = copy_system.use_image(ctx.source_image)
    if image is not None:
        cmd = copy_system.unsquashfs_command(image, ctx.target)
    else:
        cmd = copy_system.rsync_command(ctx.source_root, ctx.target)
    last = [-10]

    def progress(line: str) -> None:
        pct = copy_system.percent_in(line)
        if pct is not None and pct >= last[0] + 10:
            last[0] = pct - pct % 10
            ctx.say(f"  copying the system: {pct}%")

    ctx.run(cmd, on_line=progress)
    live = live_kernel.from_medium(ctx.source_root, ctx.medium)
    if live is not None:
        for dest in live_kernel.copy_to(live, ctx.target):
            ctx.log.write(f"copied {dest.name} from the live medium {ctx.medium}")
    for name in ("proc", "sys", "dev", "run", "tmp", "mnt", "media", "boot/efi"):
        (ctx.target / name).mkdir(parents=True, exist_ok=True)
    (ctx.target / "tmp").chmod(0o1777)


def step_fstab(ctx: InstallContext) -> None:
    entries = []
    for part in ctx.layout.partitions:
        if part.fstype is None:
            continue
        entries.append((ctx.uuids[part.number], part.mountpoint or "none", part.fstype))
    entries.sort(key=lambda e: (e[1] != "/", e[1]))
    (ctx.target / "etc/fstab").write_text(render_fstab(entries), encoding="utf-8")


def step_system_config(ctx: InstallContext) -> None:
    target, answers = ctx.target, ctx.answers
    target_config.write_identity(target, answers)
    notes = target_config.write_network(target, answers)
    notes += target_config.write_locale(target, answers)
    target_config.write_root_password(target, answers)
    notes += target_config.write_ssh_keys(target, answers)
    notes += target_config.disable_live_only_units(target)
    if shutil.which("ssh-keygen") and (target / "etc/ssh").is_dir():
        for old in (target / "etc/ssh").glob("ssh_host_*"):
            old.unlink()
        for cmd in target_config.host_key_commands(target, answers.hostname):
            ctx.run(cmd)
        target_config.write_host_keys_config(target)
        notes.append(f"ssh: new host keys ({', '.join(target_config.HOST_KEY_TYPES)})")
    for note in notes:
        ctx.log.write(note)


def step_bootloader(ctx: InstallContext) -> None:
    answers, target = ctx.answers, ctx.target
    boot_part = next((p for p in ctx.layout.partitions if p.mountpoint == "/boot"), None)
    root_part = ctx.layout.by_mountpoint("/")
    files = bootloader.find_boot_files(target / "boot", want_xen=answers.role == "server"
                                       and (answers.server is None or answers.server.xen_default))
    cfg = bootloader.render_grub_cfg(
        role=answers.role, files=files, root_uuid=ctx.uuids[root_part.number],
        boot_uuid=ctx.uuids[(boot_part or root_part).number], boot_is_root=boot_part is None,
        append=answers.kernel_append)
    grub_dir = target / "boot/grub"
    grub_dir.mkdir(parents=True, exist_ok=True)
    ctx.run(bootloader.grub_install_bios(ctx.disk.path, target))
    _install_grub_efi(ctx, boot_uuid=ctx.uuids[(boot_part or root_part).number],
                      boot_is_root=boot_part is None)
    (grub_dir / "grub.cfg").write_text(cfg, encoding="utf-8")


def _install_grub_efi(ctx: InstallContext, boot_uuid: str, boot_is_root: bool) -> None:
    modules = bootloader.GRUB_EFI_MODULES_DIR
    if not (modules / "normal.mod").exists():
        raise ConfigError(f"GRUB's EFI modules are missing ({modules})",
                          "install the Debian package grub-efi-amd64-bin on the live system")
    dest = ctx.target / "boot/grub/x86_64-efi"
    dest.mkdir(parents=True, exist_ok=True)
    for item in modules.iterdir():
        if item.suffix in (".mod", ".lst", ".o"):
            shutil.copy2(item, dest / item.name)
    stage = Path(tempfile.mkdtemp(prefix="appliance-esp-"))
    ctx.cleanup.push(f"remove {stage}", lambda: shutil.rmtree(stage))
    (stage / "EFI/BOOT").mkdir(parents=True)
    early = stage / "early.cfg"
    early.write_text(bootloader.render_efi_early_cfg(boot_uuid, boot_is_root), encoding="utf-8")
    grub_dir = "/boot/grub" if boot_is_root else "/grub"
    ctx.run(bootloader.grub_mkimage_efi(stage / "EFI/BOOT/BOOTX64.EFI", early, grub_dir))
    early.unlink()
    esp = ctx.layout.by_mountpoint("/boot/efi").device(ctx.disk.path)
    ctx.run(bootloader.mcopy_into_fat(esp, stage), env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))


def _bind_for_chroot(ctx: InstallContext) -> None:
    for name, args in (("dev", ["--bind", "/dev"]), ("proc", ["-t", "proc", "proc"]),
                       ("sys", ["-t", "sysfs", "sysfs"])):
        _mount(ctx, args, ctx.target / name)


def step_role(ctx: InstallContext) -> None:
    _bind_for_chroot(ctx)
    if ctx.answers.role == "server":
        roles.configure_server(ctx.target, ctx.answers, ctx.log, ctx.say)
    else:
        roles.configure_manager(ctx.target, ctx.answers, ctx.log, ctx.say, ctx.cleanup.push)


def step_post_scripts(ctx: InstallContext) -> None:
    _run_scripts(ctx, "post")


def step_save_log(ctx: InstallContext) -> None:
    logdir = ctx.target / "var/log"
    logdir.mkdir(parents=True, exist_ok=True)
    (logdir / "appliance-install-answers.json").write_text(
        json.dumps(ctx.answers.to_dict(), indent=2) + "\n", encoding="utf-8")
    ctx.log.write("install finished; this log is saved as /var/log/appliance-install.log")
    shutil.copyfile(ctx.log.path, logdir / "appliance-install.log")


STEPS: list[Step] = [
    ("Running %pre scripts", 1, step_pre_scripts),
    ("Partitioning", 3, step_partition),
    ("Making filesystems", 5, step_filesystems),
    ("Mounting the target", 1, step_mount),
    ("Copying the system", 55, step_copy),
    ("Writing fstab", 1, step_fstab),
    ("Configuring host name, network, time zone, passwords and SSH", 3, step_system_config),
    ("Installing GRUB for BIOS and UEFI", 15, step_bootloader),
    ("Setting up the role", 10, step_role),
    ("Running %post scripts", 3, step_post_scripts),
    ("Saving the install log", 1, step_save_log),
]


def run_install(ctx: InstallContext, steps: list[Step] | None = None) -> None:
    """Run the steps with progress; unwind the cleanup stack at the end, success or not."""
    steps = steps or STEPS
    total = sum(weight for _, weight, _ in steps)
    done = 0
    current = ""
    try:
        for index, (title, weight, func) in enumerate(steps, start=1):
            current = title
            ctx.say(f"[{index}/{len(steps)} {100 * done // total:3d}%] {title}")
            ctx.log.write(f"== step {index}/{len(steps)}: {title}")
            func(ctx)
            done += weight
        ctx.say(f"[{len(steps)}/{len(steps)} 100%] Install complete on {ctx.disk.path}")
    except ApplianceError as err:
        ctx.log.write(f"FAILED at step '{current}': {err}")
        ctx.cleanup.unwind()
        raise InstallFailed(
            f"install failed at step '{current}': {err.message}",
            (err.hint + "; " if err.hint else "") + f"the full log is {ctx.log.path}; the disk may be "
            "partly written: running the install again starts it over",
        ) from err
    except BaseException as err:
        ctx.log.write(f"FAILED at step '{current}': {err!r}")
        ctx.cleanup.unwind()
        raise
    ctx.cleanup.unwind()
    if ctx.cleanup.failures:
        ctx.say("warning: some cleanups failed: " + "; ".join(ctx.cleanup.failures))
