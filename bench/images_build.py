"""Image build benchmarks: cold and warm builds, ISO sizes, live boot to the installer prompt.

    .venv/bin/python bench/images_build.py [--roles manager server] [--no-cold] [--no-boot]

Cold: an empty cache (every .deb downloaded, fresh mmdebstrap). Warm: the same build again with
the cache filled (what a rebuild after a code change costs). Release: warm, the same squashfs compression, the timestamp pinned.
Boot: the dev ISO from a virtual CD under QEMU (BIOS, TCG unless KVM really works) with a blank
disk, until the installer asks for the disk on the serial console. Never runs two QEMUs at once:
before each boot it waits (--qemu-wait, default 10 min) until no other qemu-system process runs.
Writes the "Images" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import filecmp
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.images.build import build
from appliance.images.config import RELEASE_COMPRESSION, BuildConfig
from bench.benchfile import write_section
from qemu_tests import accel, bootmodes, serial

EPOCH = 1700000000
GOALS = {"cold": 360.0, "warm": 90.0, "boot": 45.0}
SIZE_GOALS_MB = {"manager": 250, "server": 300, "test": 0}
INSTALLER_PROMPT = "Install onto disk"


def timed_build(config: BuildConfig) -> tuple[float, Path, str]:
    log = io.StringIO()
    t0 = time.monotonic()
    iso = build(config, out=log)
    return time.monotonic() - t0, iso, log.getvalue()


def bootstrap_note(log: str) -> str:
    """What the build's bootstrap step said (bootstrapped, or the cached base it used)."""
    line = next((ln for ln in log.splitlines() if "bootstrap: done" in ln), "")
    return line.split(": ", 1)[-1]


def qemu_is_idle() -> bool:
    out = subprocess.run(["pgrep", "-c", "qemu-system"], capture_output=True, text=True).stdout.strip()
    return out in ("", "0")


def wait_for_idle_qemu(limit: float) -> bool:
    """Wait until no other qemu-system process runs (2 cores: a second QEMU skews the figure)."""
    deadline = time.monotonic() + limit
    while not qemu_is_idle():
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def boot_to_prompt(iso: Path, work: Path, marker: str, timeout: float = 400.0) -> float | None:
    disk = work / "blank.img"
    with open(disk, "wb") as fp:
        fp.truncate(8 << 30)
    cmd = bootmodes.boot_command(iso, bootmodes.BootMode("bios", "cd"), accel.accel_args(), memory_mb=2048)
    cmd += ["-drive", f"if=virtio,format=raw,snapshot=on,file={disk}"]
    result = serial.wait_for_marker(cmd, marker, timeout, work / f"{iso.stem}.serial.log", whole_line=False)
    disk.unlink()
    return result.seconds if result.found else None


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roles", nargs="+", default=["manager", "server"])
    parser.add_argument("--no-cold", action="store_true", help="skip the cold builds (reuse --cache)")
    parser.add_argument("--no-boot", action="store_true", help="skip the boot measurements")
    parser.add_argument("--boots", type=int, default=3,
                        help="boots of each ISO; the figure is their median (single boots here vary by ~10 s)")
    parser.add_argument("--cache", type=Path, default=None, help="cache for warm builds (default: fresh)")
    parser.add_argument("--qemu-wait", type=float, default=600.0,
                        help="seconds to wait for other QEMUs to end before each boot (default 600)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the ISOs in this directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-images-"))
    rows: list[str] = []
    notes: list[str] = []
    try:
        for role in args.roles:
            cache = args.cache or work / f"cache-{role}"
            out = args.keep or work / "out"
            config = BuildConfig(role=role, output_dir=out, cache_dir=cache, source_date_epoch=EPOCH)
            if not args.no_cold:
                shutil.rmtree(cache, ignore_errors=True)
                cold, _, log = timed_build(config)
                rows.append(f"| {role}: cold build | <= {GOALS['cold']:.0f} s | {cold:.0f} s | "
                            f"{verdict(cold <= GOALS['cold'])} |")  # fmt: skip
                notes.append(f"{role} cold: {bootstrap_note(log)}")
            else:
                # the cache may lack this epoch's base (a changed package list): fill it first, so
                # the figure below is a rebuild and not a bootstrap
                primed, _, log = timed_build(config)
                notes.append(f"{role} priming build (not a figure): {primed:.0f} s, {bootstrap_note(log)}")
            warm, iso, log = timed_build(config)
            rows.append(f"| {role}: warm rebuild | <= {GOALS['warm']:.0f} s | {warm:.0f} s | "
                        f"{verdict(warm <= GOALS['warm'])} |")  # fmt: skip
            steps = ", ".join(
                f"{ln.split(':')[0].split('] ')[1]} {ln.split('done in ')[1].split(' s')[0]} s"
                for ln in log.splitlines()
                if "done in" in ln and "] " in ln
            )
            notes.append(f"{role} warm steps: {steps}")
            dev_mb = iso.stat().st_size / 1e6
            goal = SIZE_GOALS_MB.get(role, 0)
            release_t, release_iso, _ = timed_build(
                replace(config, release=True, compression=RELEASE_COMPRESSION, output_dir=out / "release")
            )
            rel_mb = release_iso.stat().st_size / 1e6
            rows.append(f"| {role}: ISO size, dev ({config.compression.label}) | <= {goal} MB | {dev_mb:.0f} MB | "
                        f"{verdict(dev_mb <= goal)} |")  # fmt: skip
            rows.append(f"| {role}: ISO size, `--release` ({RELEASE_COMPRESSION.label}; warm build {release_t:.0f} s) | <= {goal} MB | "
                        f"{rel_mb:.0f} MB | {verdict(rel_mb <= goal)} |")  # fmt: skip
            if not args.no_boot and not wait_for_idle_qemu(args.qemu_wait):
                rows.append(f"| {role}: live boot (BIOS, CD) to the installer prompt | <= 45 s | not measured: "
                            f"another QEMU ran for {args.qemu_wait:.0f} s | |")  # fmt: skip
            elif not args.no_boot:
                images = [("dev", iso)]
                if filecmp.cmp(iso, release_iso, shallow=False):  # same epoch and squashfs: same bytes
                    notes.append(f"{role} `--release` ISO is byte-identical to the dev ISO: its boot is the dev figure")
                else:
                    images.append(("`--release`", release_iso))
                for kind, image in images:
                    times = [boot_to_prompt(image, work, INSTALLER_PROMPT) for _ in range(args.boots)]
                    got = sorted(t for t in times if t is not None)
                    median = statistics.median(got) if len(got) == len(times) else None
                    shown = f"{median:.0f} s" if median is not None else "no prompt within 400 s"
                    ok = median is not None and median <= GOALS["boot"]
                    rows.append(f"| {role}: live boot of the {kind} ISO (BIOS, CD) to the installer prompt, "
                                f"median of {args.boots} | <= 45 s | {shown} | {verdict(ok)} |")  # fmt: skip
                    notes.append(f"{role} {kind} ISO boots to the prompt: "
                                 + ", ".join("none" if t is None else f"{t:.1f} s" for t in times))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    body = "\n".join(
        [
            f"Measured {datetime.date.today()} by `bench/images_build.py {' '.join(sys.argv[1:])}` on "
            f"{os.cpu_count()} cores; QEMU `{' '.join(accel.accel_args())}`; load average at the end "
            f"{load[0]:.1f} (other engineers' jobs share the machine). SOURCE_DATE_EPOCH={EPOCH}.",
            "",
            "| figure | goal | measured | |",
            "|---|---|---|---|",
            *rows,
            "",
            *[f"- {n}" for n in notes],
            *(["- cold builds not run this time (`--no-cold`): their rows are missing"] if args.no_cold else []),
        ]
    )
    write_section("Images", body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
