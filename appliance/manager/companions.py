"""Applications that `appliance manager serve` runs beside the WS-API (web GUI, CLI over SSH, ...).

Each module listed in ``COMPANIONS`` exposes ``attach(app, rt, options) -> Callable[[], None] | None``:
it may mount routes on the FastAPI ``app`` (e.g. the GUI at /ui/) or start its own listener, and returns
a function that stops what it started. ``options`` are the `serve` command's arguments (argparse
Namespace or None when started from code). Companions use the WS-API only, like any other client.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from appliance.manager.runtime import ManagerRuntime

COMPANIONS: list[str] = [
    "appliance.shell.companion",  # CLI over SSH (port 10000) and the deprecated legacy TCPS API
    "appliance.gui.companion",  # web GUI at /ui/ (talks to the core through the WS-API only)
]

Stop = Callable[[], None]


def attach_all(app: FastAPI, rt: ManagerRuntime, options: Any) -> list[Stop]:
    stops: list[Stop] = []
    for name in COMPANIONS:
        stop = importlib.import_module(name).attach(app, rt, options)
        if stop is not None:
            stops.append(stop)
    return stops
