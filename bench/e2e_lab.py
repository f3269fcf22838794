"""End-to-end figures: a 3-host lab (manager + 2 Xen servers) brought up from the ISOs, its phase
times and its peak memory, plus the e2e tests' own timings.json files.

    .venv/bin/python bench/e2e_lab.py [--cold] [--servers 2]

--cold: a fresh, empty lab cache (ISOs built and every host installed, as on a clean CI machine;
the image build cache under ~/.cache/appliance stays, so Debian packages are not downloaded
again); without it the lab cache is used as it is. Peak memory: the sum of the RSS of the lab's
QEMU processes, sampled every 2 s by the Driver. --results-only writes the section from the e2e
tests' results folders alone. Writes the "End-to-end" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchfile import write_section
from qemu_tests.accel import accel_args
from qemu_tests.driver import Driver, results_root
from qemu_tests.lab import Lab, LabConfig


def test_timings() -> list[tuple[str, str, float]]:
    rows = []
    for path in sorted(results_root().glob("*/timings.json")):
        for phase, seconds in json.loads(path.read_text()).items():
            rows.append((path.parent.name, phase, seconds))
    return rows


def test_memory() -> list[str]:
    lines = []
    for path in sorted(results_root().glob("*/memory.json")):
        peak = json.loads(path.read_text())
        if peak["peak_rss_bytes"]:
            lines.append(f"| {path.parent.name} | {peak['machines_running_then']} | "
                         f"{peak['peak_rss_bytes'] / 2**30:.2f} GiB |")  # fmt: skip
    return lines


def results_section() -> list[str]:
    """The e2e tests' own figures (their last runs), from their results folders."""
    lines = ["From the e2e tests' last runs (`qemu_tests/results/*/timings.json`, `memory.json`: "
             "the Driver samples the summed RSS of its QEMUs every 2 s):", "",
             "| test results folder | phase | seconds |", "|---|---|---|",
             *[f"| {folder} | {phase} | {seconds:.0f} |" for folder, phase, seconds in test_timings()]]  # fmt: skip
    memory = test_memory()
    if memory:
        lines += ["", "| test results folder | QEMUs running at the peak | peak memory |", "|---|---|---|", *memory]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="start from an empty lab cache")
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--results-only", action="store_true",
                        help="bring no lab up: write the section from the e2e tests' results folders")
    args = parser.parse_args()
    if args.results_only:
        lines = [f"Measured {datetime.date.today()} on 2 cores, QEMU `{' '.join(accel_args())}` (Xen servers "
                 "`-cpu kvm64`); single runs; other jobs may have shared the machine.", "", *results_section()]
        write_section("End-to-end", "\n".join(lines))
        print("\n".join(lines))
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench-lab-"))
    if args.cold:
        os.environ["APPLIANCE_LAB_CACHE"] = str(work / "cache")
    start = time.monotonic()
    with Driver(work / "results", global_timeout=7200) as driver:
        lab = Lab(LabConfig(workdir=work / "lab", servers=args.servers), driver)
        lab.up()
        total = time.monotonic() - start
        start = time.monotonic()
        for machine in lab.machines.values():
            lab.shut_down(machine)
        driver.record("lab down: ACPI power-off of every host", time.monotonic() - start)
        phases = dict(driver.timings)
        peak = driver.memory.peak_bytes
    hosts = 1 + args.servers
    lines = [
        f"Measured {datetime.date.today()} on 2 cores, QEMU `{' '.join(accel_args())}` (Xen servers `-cpu kvm64`), "
        f"by `bench/e2e_lab.py{' --cold' if args.cold else ''}`: a lab of {hosts} hosts (manager 1.5 GiB, servers "
        "2 GiB, 1 vCPU each) brought up with `qemu_tests/lab.py`, the code behind `appliance lab up`. "
        + ("Cold: empty lab cache (both ISOs built, every host installed; the image build cache was warm). "
           if args.cold else "Warm: ISOs and installed disks from the lab cache. ")
        + "Single run; other engineers' jobs may share the machine.",
        "",
        "| phase | seconds |",
        "|---|---|",
        *[f"| {phase} | {seconds:.0f} |" for phase, seconds in phases.items()],
        f"| **lab up, total** | **{total:.0f}** |",
        "",
        f"Peak memory of the {hosts}-host lab (summed RSS of its QEMU processes): "
        f"**{peak / 2**30:.2f} GiB**.",
        "",
        *results_section(),
    ]
    write_section("End-to-end", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
