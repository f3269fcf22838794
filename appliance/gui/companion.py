"""Runs the web GUI beside the WS-API: `appliance manager serve` mounts it at /ui (see companions.py)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from appliance.gui.app import create_gui_app, to_gui
from appliance.gui.config import GuiConfig
from appliance.manager.runtime import ManagerRuntime


def attach(app: FastAPI, rt: ManagerRuntime, options: Any) -> None:
    # The GUI calls the WS-API over HTTPS at the very address and port its own requests arrive
    # on (so whatever `--listen` said, it reaches this manager); see GuiConfig.api_base.
    config = GuiConfig(ca_file=rt.paths.ca_cert)
    # One log line per WS-API call the GUI makes is noise in the manager's log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app.mount(config.mount_path, create_gui_app(config))
    app.add_route("/", to_gui, include_in_schema=False)
