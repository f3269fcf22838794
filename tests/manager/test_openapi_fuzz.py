"""The OpenAPI document is served, and schemathesis fuzzing against it never gets a 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ADMIN_PASSWORD, RunningManager


def test_openapi_document(fresh_manager: RunningManager) -> None:
    with fresh_manager.client() as c:
        doc = c.get("/openapi.json").json()
    paths = set(doc["paths"])
    for resource in (
        "servers",
        "server-pools",
        "vms",
        "repositories",
        "jobs",
        "events",
        "statistics",
        "backups",
        "users",
        "sessions",
    ):
        assert f"/api/v1/{resource}" in paths, resource
    assert doc["components"]["securitySchemes"]["basic"]["scheme"] == "basic"


def test_schemathesis_finds_no_server_errors(fresh_manager: RunningManager, tmp_path: Path) -> None:
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is installed by tools/setup.sh"
    proc = subprocess.run(
        [
            st,
            "run",
            f"{fresh_manager.base}/openapi.json",
            "--tls-verify",
            str(fresh_manager.ca),
            "-a",
            f"admin:{ADMIN_PASSWORD}",
            "-c",
            "not_a_server_error",
            "-n",
            "15",
            "--seed",
            "7",
            "--exclude-path",
            "/api/v1/events/stream",
            "--request-timeout",
            "20",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-6000:]
    log = fresh_manager.log_path.read_text()
    assert "unhandled error" not in log, log[-4000:]
