"""The image's venv pruning leaves a database driver that still logs in to MariaDB with a password."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import mysql.connector

from appliance.images.spec import load_role
from appliance.images.steps import remove_globs


def test_the_pruned_mysql_connector_logs_in_with_its_c_extension(tmp_path: Path, db_url: str) -> None:
    site = Path(mysql.connector.__file__).resolve().parents[2]
    (c_ext,) = site.glob("_mysql_connector*.so")
    pruned = tmp_path / "site-packages"
    pruned.mkdir()
    shutil.copytree(site / "mysql", pruned / "mysql", symlinks=True)
    shutil.copy2(c_ext, pruned / c_ext.name)
    patterns = load_role("manager").venv_remove_paths
    assert patterns
    remove_globs(pruned, patterns)
    assert not list((pruned / "mysql/vendor/plugin").glob("authentication_*"))  # the globs matched

    url = urlsplit(db_url)
    code = (
        "import sys, mysql.connector, _mysql_connector\n"
        f"assert mysql.connector.__file__.startswith({str(pruned)!r}), mysql.connector.__file__\n"
        f"conn = mysql.connector.connect(host={url.hostname!r}, port={url.port!r}, "
        f"user={url.username!r}, password={url.password!r}, database={url.path.lstrip('/')!r}, use_pure=False)\n"
        "assert type(conn).__name__ == 'CMySQLConnection', type(conn)\n"
        "cur = conn.cursor(); cur.execute('SELECT 1'); print(cur.fetchone()[0])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(pruned), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0 and proc.stdout.strip() == "1", proc.stderr
