"""`appliance build ROLE`: run the pipeline, leave either a complete ISO or nothing."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TextIO

from appliance.images.config import BuildConfig, BuildContext
from appliance.images.manifest import BuildRecord
from appliance.images.pipeline import run_steps
from appliance.images.spec import load_role
from appliance.images.steps import PYCDLIB_VERSION, STEPS
from appliance.images.workdir import remove_work_dir


def initial_inputs(ctx: BuildContext) -> dict[str, object]:
    cfg = ctx.config
    return {
        "role_spec_sha256": ctx.spec.digest(),
        "suite": cfg.suite,
        "sources": cfg.apt_sources,
        "source_date_epoch": cfg.source_date_epoch,
        "release": cfg.release,
        "squashfs": {"compressor": cfg.compression.name, "level": cfg.compression.level,
                     "block_size": cfg.compression.block_size},
        "pycdlib": PYCDLIB_VERSION,
    }


def build(config: BuildConfig, out: TextIO = sys.stdout) -> Path:
    spec = load_role(config.role, config.roles_dir)
    config.cache_dir.mkdir(parents=True, exist_ok=True)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    work_root = config.cache_dir / "work"
    work_root.mkdir(exist_ok=True)
    ctx = BuildContext(config, spec, Path(tempfile.mkdtemp(prefix=f"{config.role}-", dir=work_root)))
    record = BuildRecord()
    record.inputs.update(initial_inputs(ctx))
    try:
        run_steps(STEPS, ctx, record, out=out)
    except BaseException:
        ctx.iso_tmp.unlink(missing_ok=True)  # never leave a half-written ISO behind
        raise
    finally:
        if not remove_work_dir(ctx.work_dir):
            print(f"warning: {ctx.work_dir} still has mounts below it; unmount them and delete it", file=out)
    return ctx.iso_path
