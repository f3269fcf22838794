"""Virtualization appliance toolkit: manager and server hosts, their ISOs, and nested-QEMU labs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("appliance")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
