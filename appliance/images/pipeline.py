"""A linear pipeline of named steps with progress and timings; cleans up after a failure."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from appliance.images.config import BuildContext
from appliance.images.manifest import BuildRecord

StepFunc = Callable[[BuildContext, BuildRecord], str | None]


@dataclass(frozen=True)
class Step:
    name: str
    description: str
    run: StepFunc  # returns an optional short note ("cache hit", "123 MB") for the progress line


def run_steps(
    steps: Sequence[Step], ctx: BuildContext, record: BuildRecord, out: TextIO = sys.stdout
) -> BuildRecord:
    total = len(steps)
    started = time.monotonic()
    for i, step in enumerate(steps, 1):
        print(f"[{i}/{total}] {step.name}: {step.description} ...", file=out, flush=True)
        t0 = time.monotonic()
        note = step.run(ctx, record)
        took = time.monotonic() - t0
        record.timings[step.name] = round(took, 2)
        suffix = f" ({note})" if note else ""
        print(f"[{i}/{total}] {step.name}: done in {took:.1f} s{suffix}", file=out, flush=True)
    print(f"build finished in {time.monotonic() - started:.1f} s", file=out, flush=True)
    return record
