"""`appliance install` starts without importing the other command groups (slow under emulation)."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys

from appliance import cli

HEAVY = ("sqlalchemy", "fastapi", "pykickstart", "httpx", "uvicorn", "alembic", "jinja2")


def test_commands_name_every_subcommand_of_its_module() -> None:
    for module in cli.COMMAND_GROUPS:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(sub)
        registered = set(sub.choices)
        assert registered == {name for name, owner in cli.COMMANDS.items() if owner == module}, module


def test_groups_for_picks_the_named_command_or_all() -> None:
    assert cli.groups_for(["-v", "install", "--console"]) == ["appliance.installer.cli"]
    assert cli.groups_for(["build", "manager"]) == ["appliance.images.cli"]
    assert cli.groups_for(["--help"]) == cli.COMMAND_GROUPS
    assert cli.groups_for(["instal"]) == cli.COMMAND_GROUPS


def test_install_parser_imports_no_heavy_library() -> None:
    code = (
        "import json, sys\n"
        "from appliance.cli import build_parser\n"
        "build_parser(['install']).parse_args(['install', '--dry-run'])\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    modules = set(json.loads(out))
    assert "importlib.metadata" not in modules  # the version is read only for --version
    loaded = {m.split(".")[0] for m in modules}
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
    assert "appliance" in loaded


def test_version_is_read_when_asked() -> None:
    out = subprocess.run([sys.executable, "-m", "appliance", "--version"], capture_output=True, text=True,
                         check=True).stdout
    import appliance

    assert out == f"appliance {appliance.__version__}\n" and appliance.__version__ != "0.0.0"


def test_installer_modules_load_no_network_or_hashing_library() -> None:
    # ssl/http (a network kickstart only), passlib (hashing a typed password), hashlib/secrets
    # (OpenSSL): each is loaded when first used, not on the way to the first question
    code = (
        "import json, sys\n"
        "import appliance.installer.install_cli, appliance.installer.interactive\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    modules = set(json.loads(out))
    lazy = {"passlib", "ssl", "http.client", "urllib.request", "hashlib", "secrets"}
    assert modules.isdisjoint(lazy), sorted(modules & lazy)
