"""`appliance manager backup create|list|verify|restore`, run without a serving manager."""

from __future__ import annotations

import argparse

from sqlalchemy import inspect, text

from appliance.manager import backups, migrate
from appliance.manager.config import StatePaths, load_config
from appliance.manager.database import check_connection, make_engine
from appliance.manager.service import state_lock


def run(args: argparse.Namespace) -> int:
    paths = StatePaths(args.state_dir)
    cfg = load_config(paths)
    if args.action == "list":
        rows = backups.list_backups(paths.backups)
        print(f"{'ID':34} {'KIND':6} {'SIZE':>10}  SHA256")
        for b in rows:
            print(f"{b.id:34} {b.kind:6} {b.size_bytes:>10}  {b.sha256}")
        return 0
    if args.action == "verify":
        info = backups.verify(paths.backups, args.backup_id)
        print(f"backup {info.id} is intact (sha256 {info.sha256})")
        return 0
    engine = make_engine(cfg.database, pool_size=1)
    try:
        check_connection(engine, cfg.database)
        if args.action == "create":
            info = backups.create(paths.backups, cfg.database, "manual", migrate.current_revision(engine))
            print(f"backup {info.id}: {info.size_bytes} bytes, sha256 {info.sha256}")
            return 0
        with state_lock(paths):
            info = backups.verify(paths.backups, args.backup_id)  # before anything is dropped
            safety = backups.create(paths.backups, cfg.database, "manual", migrate.current_revision(engine))
            print(f"safety backup of the current database: {safety.id}")
            print(f"restoring backup {info.id} into {cfg.database.redacted()} ...")
            with engine.begin() as conn:
                conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
                for table in inspect(conn).get_table_names():
                    conn.execute(text(f"DROP TABLE `{table}`"))
            engine.dispose()
            backups.restore(paths.backups, info.id, cfg.database)
            before, after = migrate.upgrade(engine)
            note = f", schema migrated {before} -> {after}" if before != after else ""
            print(f"restored backup {info.id}{note}")
        return 0
    finally:
        engine.dispose()
