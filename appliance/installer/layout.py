"""The partition layout of the target disk (pure): GPT with BIOS boot, EFI system, root and more."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import UsageError
from appliance.installer.answers import MANAGER_DB_MOUNTPOINT, Answers, PartitionAnswer

GUID_BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649"
GUID_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GUID_ROOT_X86_64 = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
GUID_LINUX_DATA = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GUID_SWAP = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"

BIOS_BOOT_MIB = 1
ESP_MIB = 256
ALIGN_MIB = 1  # first partition starts at 1 MiB
GPT_BACKUP_MIB = 1  # the backup GPT at the end of the disk
MIN_DB_MIB = 256
MAX_DB_MIB = 64 * 1024
DB_SHARE = 0.30  # default layout: the manager's database takes this share of the space after ESP


@dataclass(frozen=True)
class PlannedPartition:
    number: int
    name: str  # GPT partition name
    type_guid: str
    size_mib: int  # 0: the rest of the disk (only the last partition)
    fstype: str | None  # None: no filesystem (BIOS boot)
    mountpoint: str | None
    label: str = ""

    def device(self, disk_path: str) -> str:
        return partition_device(disk_path, self.number)


@dataclass(frozen=True)
class Layout:
    disk_path: str
    disk_mib: int
    partitions: tuple[PlannedPartition, ...]

    def sfdisk_script(self) -> str:
        lines = ["label: gpt"]
        for part in self.partitions:
            size = f"size={part.size_mib}MiB, " if part.size_mib else ""
            lines.append(f'{size}type={part.type_guid}, name="{part.name}"')
        return "\n".join(lines) + "\n"

    def mounted(self) -> list[PlannedPartition]:
        """Partitions with a mount point, parents before children (/ before /boot before /boot/efi)."""
        parts = [p for p in self.partitions if p.mountpoint and p.mountpoint.startswith("/")]

        def depth(part: PlannedPartition) -> tuple[int, str]:
            mount = part.mountpoint or "/"
            return (0 if mount == "/" else mount.rstrip("/").count("/"), mount)

        return sorted(parts, key=depth)

    def by_mountpoint(self, mountpoint: str) -> PlannedPartition:
        for part in self.partitions:
            if part.mountpoint == mountpoint:
                return part
        raise KeyError(mountpoint)

    def root_mib(self) -> int:
        root = self.by_mountpoint("/")
        if root.size_mib:
            return root.size_mib
        used = sum(p.size_mib for p in self.partitions)
        return self.disk_mib - ALIGN_MIB - GPT_BACKUP_MIB - used

    def describe(self) -> list[str]:
        rows = []
        for part in self.partitions:
            size = f"{part.size_mib} MiB" if part.size_mib else "rest of disk"
            what = part.mountpoint or part.name
            rows.append(f"{part.device(self.disk_path)}  {size:>14}  {part.fstype or '-':6} {what}")
        return rows


def partition_device(disk_path: str, number: int) -> str:
    """/dev/sda + 1 -> /dev/sda1; /dev/nvme0n1 + 1 -> /dev/nvme0n1p1; /dev/loop0 -> /dev/loop0p1."""
    return f"{disk_path}p{number}" if disk_path[-1].isdigit() else f"{disk_path}{number}"


def _label_for(mountpoint: str) -> str:
    known = {"/": "root", MANAGER_DB_MOUNTPOINT: "appliance-db", "/boot": "boot", "swap": "swap"}
    if mountpoint in known:
        return known[mountpoint]
    return mountpoint.strip("/").replace("/", "-")[-16:] or "data"


def _type_for(part: PartitionAnswer) -> str:
    if part.mountpoint == "swap":
        return GUID_SWAP
    return GUID_ROOT_X86_64 if part.mountpoint == "/" else GUID_LINUX_DATA


def default_partitions(answers: Answers, free_mib: int) -> tuple[PartitionAnswer, ...]:
    """autopart: root takes the disk; a manager's database gets its own filesystem too."""
    if answers.role != "manager":
        return (PartitionAnswer(mountpoint="/", size_mib=1, grow=True),)
    db = int(min(MAX_DB_MIB, max(MIN_DB_MIB, free_mib * DB_SHARE)))
    return (
        PartitionAnswer(mountpoint=MANAGER_DB_MOUNTPOINT, size_mib=db),
        PartitionAnswer(mountpoint="/", size_mib=1, grow=True),
    )


def plan_layout(answers: Answers, disk_path: str, disk_bytes: int, min_root_mib: int = 0) -> Layout:
    """Lay out the disk for ``answers``; raise UsageError when it does not fit."""
    disk_mib = disk_bytes // (1024 * 1024)
    free = disk_mib - ALIGN_MIB - GPT_BACKUP_MIB - BIOS_BOOT_MIB - ESP_MIB
    if free <= 0:
        raise UsageError(
            f"{disk_path} is too small ({disk_mib} MiB) for the boot partitions", "choose a larger disk"
        )
    wanted = answers.partitions or default_partitions(answers, free)
    # The growing partition goes last so it can take the rest of the disk.
    ordered = [p for p in wanted if not p.grow] + [p for p in wanted if p.grow]
    planned = [
        PlannedPartition(1, "bios", GUID_BIOS_BOOT, BIOS_BOOT_MIB, None, None),
        PlannedPartition(2, "esp", GUID_ESP, ESP_MIB, "vfat", "/boot/efi", "EFI"),
    ]
    for index, part in enumerate(ordered, start=3):
        grows = part.grow and part is ordered[-1]
        fstype = "swap" if part.mountpoint == "swap" else part.fstype
        planned.append(
            PlannedPartition(
                number=index,
                name=_label_for(part.mountpoint),
                type_guid=_type_for(part),
                size_mib=0 if grows else part.size_mib,
                fstype=fstype,
                mountpoint=part.mountpoint,
                label=_label_for(part.mountpoint),
            )
        )
    layout = Layout(disk_path=disk_path, disk_mib=disk_mib, partitions=tuple(planned))
    fixed = sum(p.size_mib for p in ordered if not p.grow)
    grow_min = sum(p.size_mib for p in ordered if p.grow)
    if fixed + grow_min > free:
        raise UsageError(
            f"the partitions need {fixed + grow_min} MiB but {disk_path} has {free} MiB free after the "
            "boot partitions",
            "choose a larger disk or smaller --size values in the part lines",
        )
    if min_root_mib and layout.root_mib() < min_root_mib:
        raise UsageError(
            f"the root filesystem would get {layout.root_mib()} MiB but the system needs {min_root_mib} MiB",
            "choose a larger disk or give / more space (part / --size=... --grow)",
        )
    return layout


# systemd waits 90 s for a filesystem's device by default; a busy or emulated host's udev can take
# longer, and a timeout drops the host into emergency mode (no SSH, no agent)
DEVICE_TIMEOUT = "x-systemd.device-timeout=10min"


def render_fstab(entries: list[tuple[str, str, str]]) -> str:
    """fstab lines by UUID from (uuid, mountpoint, fstype). The EFI system partition is ``nofail``:
    nothing at run time needs it, so the host boots without it."""
    lines = [
        "# /etc/fstab: written by the appliance installer; filesystems by UUID",
        "# <file system>  <mount point>  <type>  <options>  <dump>  <pass>",
    ]
    for uuid, mountpoint, fstype in entries:
        if fstype == "swap":
            lines.append(f"UUID={uuid}  none  swap  sw,nofail,{DEVICE_TIMEOUT}  0  0")
        elif fstype == "vfat":
            lines.append(f"UUID={uuid}  {mountpoint}  vfat  umask=0077,nofail,{DEVICE_TIMEOUT}  0  1")
        elif mountpoint == "/":
            lines.append(f"UUID={uuid}  /  {fstype}  errors=remount-ro  0  1")
        else:
            lines.append(f"UUID={uuid}  {mountpoint}  {fstype}  errors=remount-ro,{DEVICE_TIMEOUT}  0  2")
    return "\n".join(lines) + "\n"
