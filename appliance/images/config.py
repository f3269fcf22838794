"""Frozen build configuration and the context (paths) every pipeline step reads."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from appliance import __version__
from appliance.errors import UsageError
from appliance.images.spec import ROLES_DIR, RoleSpec

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
DEFAULT_SUITE = "bookworm"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "appliance"


def source_tree() -> Path:
    """The checkout this package runs from (its wheel is installed into the image)."""
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Compression:
    """squashfs compressor and its options (zstd for both build kinds; xz remains selectable)."""

    name: str
    level: int
    block_size: str = "1M"  # larger blocks compress better; 1M is the largest squashfs allows

    def mksquashfs_args(self) -> list[str]:
        if self.name == "zstd":
            return ["-comp", "zstd", "-Xcompression-level", str(self.level), "-b", self.block_size]
        if self.name == "xz":
            return ["-comp", "xz", "-Xbcj", "x86", "-b", self.block_size]
        raise UsageError(f"unknown squashfs compressor {self.name!r}", hint="use zstd or xz")

    @property
    def label(self) -> str:
        return f"{self.name}-{self.level}, {self.block_size} blocks"


# 128K blocks: the live system reads its small files twice as fast as from 1M blocks under TCG
# (every .pyc read decompressed a whole 1M block); ~7% larger, won back by pruning the venv
DEV_COMPRESSION = Compression("zstd", 9, "128K")
# releases boot as fast as dev builds (the 45 s goal under TCG): the smaller variants booted slower,
# xz with 1M blocks (-23%) in 58-61 s, zstd-19 (-7%) in 46-51 s, against 40-45 s
RELEASE_COMPRESSION = DEV_COMPRESSION


@dataclass(frozen=True)
class BuildConfig:
    """Everything a build depends on besides the role spec and the Debian archive's content."""

    role: str
    output_dir: Path
    cache_dir: Path
    version: str = __version__
    release: bool = False
    # None: not reproducible (timestamps are the build time); set from SOURCE_DATE_EPOCH
    source_date_epoch: int | None = None
    suite: str = DEFAULT_SUITE
    mirror: str = DEFAULT_MIRROR
    security_mirror: str = DEFAULT_SECURITY_MIRROR
    compression: Compression = DEV_COMPRESSION
    refresh_base: bool = False  # re-bootstrap even when a cached base exists (debs stay cached)
    source_dir: Path = field(default_factory=source_tree)
    roles_dir: Path = ROLES_DIR

    @property
    def iso_name(self) -> str:
        return f"appliance-{self.role}-{self.version}.iso"

    @property
    def volume_id(self) -> str:
        """ISO 9660 volume id (d-characters, <= 32): also the label GRUB searches for."""
        raw = f"APPLIANCE_{self.role}_{self.version}".upper()
        return "".join(c if c.isalnum() else "_" for c in raw)[:32]

    @property
    def epoch(self) -> int:
        """The timestamp every file in the image gets."""
        return self.source_date_epoch if self.source_date_epoch is not None else int(time.time())

    @property
    def apt_sources(self) -> list[str]:
        return [
            f"deb {self.mirror} {self.suite} main",
            f"deb {self.mirror} {self.suite}-updates main",
            f"deb {self.security_mirror} {self.suite}-security main",
        ]


def epoch_from_environment(env: dict[str, str] | None = None) -> int | None:
    """SOURCE_DATE_EPOCH if set (validated), else None."""
    raw = (env if env is not None else os.environ).get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise UsageError(
            f"SOURCE_DATE_EPOCH must be a number of seconds since 1970, got {raw!r}",
            hint="e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)",
        )
    return int(raw)


def git_commit_epoch(tree: Path) -> int | None:
    """Commit time of HEAD in ``tree`` (the default epoch of release builds), or None."""
    try:
        out = subprocess.run(
            ["git", "-C", str(tree), "log", "-1", "--format=%ct"], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return None
    return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip().isdigit() else None


@dataclass(frozen=True)
class BuildContext:
    """The frozen config plus the directories of one build run."""

    config: BuildConfig
    spec: RoleSpec
    work_dir: Path  # removed at the end of the build

    @property
    def rootfs(self) -> Path:
        return self.work_dir / "rootfs"

    @property
    def iso_tree(self) -> Path:
        return self.work_dir / "iso"

    @property
    def log_file(self) -> Path:
        return self.work_dir / "build.log"

    @property
    def debs_cache(self) -> Path:
        return self.config.cache_dir / "debs"

    @property
    def base_cache(self) -> Path:
        return self.config.cache_dir / "base"

    @property
    def wheels_cache(self) -> Path:
        return self.config.cache_dir / "wheels"

    @property
    def iso_tmp(self) -> Path:
        return self.config.output_dir / f".{self.config.iso_name}.partial"

    @property
    def iso_path(self) -> Path:
        return self.config.output_dir / self.config.iso_name
