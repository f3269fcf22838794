"""`appliance build ...` and `appliance iso embed-ks ...`."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from types import FrameType

from appliance.images import config as cfg

BUILD_ROLES = ("manager", "server", "test")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    build = sub.add_parser("build", help="build an installable ISO (manager, server, or the tiny test image)")
    build.add_argument("role", choices=BUILD_ROLES, help="which image to build")
    build.add_argument("--output", type=Path, default=Path("."), help="directory for the ISO (default: .)")
    build.add_argument(
        "--cache", type=Path, default=None, help="cache directory (default: ~/.cache/appliance)"
    )
    build.add_argument("--release", action="store_true", help="release build: timestamps default to the git commit time")
    build.add_argument("--mirror", default=cfg.DEFAULT_MIRROR, help="Debian mirror URL")
    build.add_argument(
        "--security-mirror", default=cfg.DEFAULT_SECURITY_MIRROR, help="Debian security mirror URL"
    )
    build.add_argument(
        "--refresh-base", action="store_true", help="bootstrap again even if a cached base exists"
    )
    build.set_defaults(func=_build)

    iso = sub.add_parser("iso", help="change an existing appliance ISO")
    iso_cmds = iso.add_subparsers(dest="iso_command", metavar="SUBCOMMAND")
    iso_cmds.required = True
    embed = iso_cmds.add_parser("embed-ks", help="add a kickstart and make the automatic install the default")
    embed.add_argument("iso_in", type=Path, metavar="IN.iso")
    embed.add_argument("kickstart", type=Path, metavar="KS.cfg")
    embed.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.iso")
    embed.set_defaults(func=_embed_ks)


def make_config(args: argparse.Namespace) -> cfg.BuildConfig:
    epoch = cfg.epoch_from_environment()
    if epoch is None and args.release:
        epoch = cfg.git_commit_epoch(cfg.source_tree())
    return cfg.BuildConfig(
        role=args.role,
        output_dir=args.output.resolve(),
        cache_dir=(args.cache or cfg.default_cache_dir()).resolve(),
        release=args.release,
        source_date_epoch=epoch,
        mirror=args.mirror,
        security_mirror=args.security_mirror,
        compression=cfg.RELEASE_COMPRESSION if args.release else cfg.DEV_COMPRESSION,
        refresh_base=args.refresh_base,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _build(args: argparse.Namespace) -> int:
    from appliance.images.build import build

    # `kill PID` stops the build like Ctrl-C: the running program cleans up, no ISO is left behind
    signal.signal(signal.SIGTERM, _interrupt)
    iso = build(make_config(args))
    print(iso)
    return 0


def _embed_ks(args: argparse.Namespace) -> int:
    from appliance.images.embed import embed_kickstart

    out = embed_kickstart(args.iso_in, args.kickstart, args.output)
    print(out)
    return 0
