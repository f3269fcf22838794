"""Browser tests of the web GUI: a real manager (with the GUI mounted at /ui/) on its own MariaDB
database and a free loopback port, driven by Playwright through Debian's chromium."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w

from appliance.manager import dbserver
from appliance.manager.config import ManagerConfig
from tests.conftest import ADMIN_PASSWORD, RunningManager, init_manager

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RESULTS = Path(__file__).parent / "results"
READONLY = ("viewer", "viewer-pw-1234")


@pytest.fixture(scope="session")
def gui_manager(
    tmp_path_factory: pytest.TempPathFactory, mariadb: dbserver.MariaDBInstance
) -> Iterator[RunningManager]:
    dbserver.create_database(mariadb, "gui_manager", user="gui", password="gui-pw")
    tmp = tmp_path_factory.mktemp("gui-manager")
    state = tmp / "manager"
    init_manager(state, mariadb.url("gui", "gui-pw", "gui_manager"))
    mgr = RunningManager(state, "", dbserver.free_tcp_port(), tmp / "manager.log")
    known = {f.name for f in dataclasses.fields(ManagerConfig)}
    if "public_url" in known:  # agents discovered in these tests push back over loopback only
        cfg = state / "manager.toml"
        data = tomllib.loads(cfg.read_text())
        data["public_url"] = f"https://127.0.0.1:{mgr.port}"
        cfg.write_text(tomli_w.dumps(data))
    mgr.start()
    with mgr.client() as admin:
        job = admin.post(
            "/users",
            params={"wait": 30},
            json={"name": READONLY[0], "password": READONLY[1], "role": "readonly"},
        ).json()
        assert job["state"] == "succeeded", job
    yield mgr
    mgr.stop()


@pytest.fixture
def api(gui_manager: RunningManager) -> Iterator[httpx.Client]:
    with gui_manager.client() as client:
        yield client


@pytest.fixture(scope="session")
def ui(gui_manager: RunningManager) -> str:
    return f"https://127.0.0.1:{gui_manager.port}/ui"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: run tools/setup.sh (it installs the apt package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser: Any, gui_manager: RunningManager) -> Iterator[Any]:
    # The manager's certificate is made by its own CA; the browser trusts it for this test only.
    ctx = browser.new_context(ignore_https_errors=True, viewport={"width": 1300, "height": 900})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(context: Any, request: pytest.FixtureRequest) -> Any:
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # The strict Content-Security-Policy must not block anything the GUI itself ships.
    pg.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    yield pg
    if request.node.stash.get(FAILED, False) and not pg.is_closed():
        screenshot(pg, f"FAILED-{request.node.name}")  # what the browser showed when the test failed
    assert not errors, errors


def login(page: Any, ui: str, user: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    page.goto(f"{ui}/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/ui/$"))
    wait_live(page)


def wait_live(page: Any) -> None:
    """The page's event stream is connected (the header says "live")."""
    page.wait_for_selector("#live-status[data-state=on]")


def screenshot(page: Any, name: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def has_api_path(client: httpx.Client, method: str, path: str, field: str | None = None) -> bool:
    """Whether the live manager's OpenAPI document offers this call (and body field); ``{}`` in
    ``path`` matches any path parameter name."""
    doc = client.get("/openapi.json").json()
    pattern = re.compile("^/api/v1" + re.escape(path).replace(r"\{\}", r"\{[^}]+\}") + "$")
    ops = [ops for p, ops in doc.get("paths", {}).items() if pattern.match(p)]
    op = ops[0].get(method.lower()) if ops else None
    if op is None:
        return False
    if field is None:
        return True
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "").rsplit("/", 1)[-1]
    props = doc.get("components", {}).get("schemas", {}).get(ref, {}).get("properties", {})
    return field in props


@pytest.fixture
def agent_process(tmp_path: Path, api: httpx.Client) -> Iterator[Any]:
    """A real agent process on loopback with libvirt's test driver (started only when the manager
    can discover servers)."""
    if not has_api_path(api, "POST", "/servers", field="agent_password"):
        pytest.skip("this manager cannot discover servers yet (POST /api/v1/servers has no agent_password)")
    from tests.trust.conftest import AgentProcess

    agent = AgentProcess(tmp_path / "agent", dbserver.free_tcp_port(), tmp_path / "agent.log")
    agent.start()
    yield agent
    agent.stop()
