"""Virtualization appliance toolkit: manager and server hosts, their ISOs, and nested-QEMU labs."""

from __future__ import annotations

from functools import cache


@cache
def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # slow to import: only when asked

    try:
        return version("appliance")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0"


def __getattr__(name: str) -> str:  # PEP 562: ``from appliance import __version__`` stays as it was
    if name == "__version__":
        return _installed_version()
    raise AttributeError(f"module 'appliance' has no attribute {name!r}")
