"""Which .pyc files the build rewrites hash-checked: real bytecode written by py_compile."""

from __future__ import annotations

import importlib.util
import py_compile
from pathlib import Path

from appliance.images import bytecode


def _module(root: Path, rel: str, mode: py_compile.PycInvalidationMode) -> tuple[Path, Path]:
    src = root / rel
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text("VALUE = 1\n")
    pyc = Path(importlib.util.cache_from_source(str(src)))
    py_compile.compile(str(src), cfile=str(pyc), invalidation_mode=mode, doraise=True)
    return src, pyc


def test_finds_only_timestamp_checked_bytecode_under_usr_and_opt(tmp_path: Path) -> None:
    stamp, _ = _module(tmp_path, "usr/lib/python3.11/json/decoder.py", py_compile.PycInvalidationMode.TIMESTAMP)
    _module(tmp_path, "usr/lib/python3/dist-packages/pyudev/core.py", py_compile.PycInvalidationMode.CHECKED_HASH)
    _module(tmp_path, "opt/appliance/lib/site.py", py_compile.PycInvalidationMode.UNCHECKED_HASH)
    other, _ = _module(tmp_path, "opt/tool/run.py", py_compile.PycInvalidationMode.TIMESTAMP)
    _module(tmp_path, "home/user/x.py", py_compile.PycInvalidationMode.TIMESTAMP)  # outside /usr and /opt
    orphan, _ = _module(tmp_path, "usr/share/gone.py", py_compile.PycInvalidationMode.TIMESTAMP)
    orphan.unlink()
    assert bytecode.timestamp_checked_sources(tmp_path) == sorted([stamp, other])


def test_header_flags_and_source_paths() -> None:
    assert bytecode.is_timestamp_pyc(b"\xa7\x0d\x0d\x0a" + b"\0" * 12)
    assert not bytecode.is_timestamp_pyc(b"\xa7\x0d\x0d\x0a" + b"\x03\0\0\0" + b"\0" * 8)
    assert not bytecode.is_timestamp_pyc(b"\xa7\x0d")  # truncated: leave it alone
    assert bytecode.source_of(Path("/a/__pycache__/mod.cpython-311.pyc")) == Path("/a/mod.py")
    assert bytecode.source_of(Path("/a/mod.pyc")) is None
