"""`appliance manager serve`: the HTTPS listener, the job runner and the housekeeping scheduler."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from appliance.errors import ConfigError, DatabaseError
from appliance.manager import backups, events, jobs, migrate, statistics
from appliance.manager.api.app import create_app
from appliance.manager.api.auth import Authenticator
from appliance.manager.companions import attach_all
from appliance.manager.config import ManagerConfig, StatePaths, load_config, parse_listen
from appliance.manager.database import check_connection, make_engine
from appliance.manager.events import EventBell
from appliance.manager.jobs import JobRunner
from appliance.manager.runtime import ManagerRuntime
from appliance.manager.tlsproto import ClientCertProtocol
from appliance.manager.trust import issue_companion_certificate

log = logging.getLogger(__name__)


@contextlib.contextmanager
def state_lock(paths: StatePaths) -> Iterator[None]:
    """Held while a manager serves from this state dir; offline operations (restore) take it too."""
    paths.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"another manager process is using {paths.root}",
                "stop the running `appliance manager serve` first",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def build_runtime(paths: StatePaths, cfg: ManagerConfig) -> ManagerRuntime:
    engine = make_engine(cfg.database, pool_size=cfg.db_pool_size)
    check_connection(engine, cfg.database)
    if not migrate.is_current(engine):
        raise DatabaseError(
            f"the database schema is at revision {migrate.current_revision(engine)}, "
            f"this manager needs {migrate.head_revision()}",
            f"run `appliance manager upgrade --state-dir {paths.root}` (take a backup first)",
        )
    bell = EventBell()
    runner = JobRunner(engine, bell, workers=cfg.job_workers)
    reader = make_engine(cfg.database, pool_size=cfg.db_pool_size, autocommit=True)
    rt = ManagerRuntime(cfg, paths, engine, reader, runner, bell, Authenticator(reader))
    runner.services = rt
    return rt


class Housekeeper(threading.Thread):
    """Scheduled backups, statistics roll-ups and expired-session clean-up."""

    def __init__(
        self, rt: ManagerRuntime, period: float = 60.0, reload_tls: Callable[[], None] | None = None
    ) -> None:
        super().__init__(name="housekeeper", daemon=True)
        self.rt, self.period, self.reload_tls = rt, period, reload_tls
        self.last_reconcile = 0.0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.period):
            for task in (self.renew_certificates, self.reconcile, self.backup_if_due, self.downsample):
                try:
                    task()
                except Exception:
                    log.exception("housekeeping task %s failed", task.__name__)

    def backup_if_due(self) -> None:
        with self.rt.engine.begin() as conn:
            interval = backups.read_config(conn)["interval_minutes"]
            last = backups.last_auto_backup_time(self.rt.paths.backups)
            due = last is None or dt.datetime.now(dt.UTC) - last >= dt.timedelta(minutes=interval)
            pending = conn.execute(
                jobs.jobs.select().where(
                    jobs.jobs.c.kind == "backup.create", jobs.jobs.c.state.in_(("queued", "running"))
                )
            ).first()
            if due and pending is None:
                jobs.submit(
                    conn,
                    kind="backup.create",
                    summary="scheduled backup of the database",
                    request={"kind": "auto"},
                    created_by="scheduler",
                    object_type="backup",
                    object_id="database",
                )
        self.rt.runner.notify()

    def renew_certificates(self) -> None:
        from appliance.manager.setup import host_names
        from appliance.manager.trust import renew_own_certificates

        renewed = renew_own_certificates(self.rt.paths, self.rt.config.manager_uuid, host_names())
        if renewed:
            if self.reload_tls and self.rt.paths.server_cert.name in renewed:
                self.reload_tls()
            with self.rt.engine.begin() as conn:
                events.record(
                    conn, type="manager.certificate_renewed", message=f"renewed {', '.join(renewed)}"
                )

    def reconcile(self) -> None:
        from appliance.manager.servers import reconcile

        now = time.monotonic()
        if now - self.last_reconcile >= self.rt.config.reconcile_seconds:
            self.last_reconcile = now
            reconcile(self.rt)

    def downsample(self) -> None:
        statistics.downsample(self.rt.engine)


def server_ssl(paths: StatePaths) -> dict[str, object]:
    for path in (paths.server_cert, paths.server_key, paths.ca_cert):
        if not path.is_file():
            raise ConfigError(
                f"{path} is missing", "run `appliance manager init` to create the CA and certificates"
            )
    return {
        "ssl_certfile": str(paths.server_cert),
        "ssl_keyfile": str(paths.server_key),
        "ssl_ca_certs": str(paths.ca_cert),
        # Users log in with passwords; agents present certificates issued by our CA.
        "ssl_cert_reqs": ssl.CERT_OPTIONAL,
    }


def serve(state_dir: Path, listen: str | None = None, options: Any = None) -> int:
    """Run the manager until SIGINT/SIGTERM; ``options`` (the CLI's arguments) go to the companions."""
    paths = StatePaths(state_dir)
    cfg = load_config(paths)
    host, port = parse_listen(listen or cfg.listen)
    with state_lock(paths):
        rt = build_runtime(paths, cfg)
        app = create_app(rt)
        with rt.engine.begin() as conn:
            issue_companion_certificate(conn, paths)
        stops = attach_all(app, rt, options)
        rt.runner.start()
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=ClientCertProtocol,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=5,  # open event streams must not hold up a stop
            limit_concurrency=1000,
            **server_ssl(paths),  # type: ignore[arg-type]
        )
        server = uvicorn.Server(config)

        def reload_tls() -> None:  # new handshakes use the renewed certificate
            if config.ssl is not None:
                config.ssl.load_cert_chain(paths.server_cert, paths.server_key)

        keeper = Housekeeper(rt, cfg.housekeeping_seconds, reload_tls)
        keeper.start()
        log.info("manager %s serving https://%s:%d/api/v1", cfg.manager_uuid, host, port)
        try:
            server.run()
        finally:
            for stop in reversed(stops):
                stop()
            keeper.stopping.set()
            rt.runner.stop()
            rt.engine.dispose()
            rt.reader.dispose()
    return 0
