"""Static checks run as part of the suite: ruff on the tree, mypy on the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _run(repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=repo_root, capture_output=True, text=True)


def test_ruff_check(repo_root: Path) -> None:
    proc = _run(repo_root, "ruff", "check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_is_not_required_but_syntax_is(repo_root: Path) -> None:
    proc = _run(repo_root, "compileall", "-q", "appliance", "qemu_tests", "tests")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_package(repo_root: Path) -> None:
    proc = _run(repo_root, "mypy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
