"""The GUI in a real browser (Debian's chromium through Playwright) against a real manager and MariaDB."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import ADMIN_PASSWORD, RunningManager

from .conftest import READONLY, has_api_path, login, screenshot, wait_live

SESSION_COOKIE = "__Host-appliance-ui"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def vms_named(api: httpx.Client, name: str) -> list[dict[str, Any]]:
    return list(api.get("/vms", params={"name": name}).json()["items"])


def test_login_cookie_flags_and_logout(page: Any, context: Any, ui: str, api: httpx.Client) -> None:
    page.goto(f"{ui}/vms")
    assert "/ui/login" in page.url
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "wrong-password")
    page.click("#login-form button[type=submit]")
    error = page.locator("[data-error-for=login]")
    assert "password" in error.inner_text().lower() or "invalid" in error.inner_text().lower()
    screenshot(page, "login-refused")

    sessions_before = api.get("/sessions").json()["total"]
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/ui/vms$"))  # back to where the user was going
    wait_live(page)
    assert api.get("/sessions").json()["total"] == sessions_before + 1

    (cookie,) = [c for c in context.cookies() if c["name"] == SESSION_COOKIE]
    assert (
        cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    )
    # The browser's cookie is no API credential: the token stays on the server.
    probe = httpx.get(
        f"{api.base_url}me", headers={"Authorization": f"Bearer {cookie['value']}"}, verify=False, timeout=10
    )
    assert probe.status_code == 401
    assert page.evaluate("document.cookie") == ""  # HttpOnly: scripts cannot read it

    page.click("#logout")
    page.wait_for_url(re.compile(r".*/ui/login.*"))
    assert "logged out" in page.inner_text("main")
    assert api.get("/sessions").json()["total"] == sessions_before  # the API session ended too
    # The old cookie opens nothing any more.
    context.add_cookies([{**cookie}])
    page.goto(f"{ui}/vms")
    assert "/ui/login" in page.url


def test_create_vm_watch_job_live_acknowledge(context: Any, page: Any, ui: str, api: httpx.Client) -> None:
    login(page, ui)
    watcher = context.new_page()
    watcher.goto(f"{ui}/jobs")
    wait_live(watcher)
    watcher.evaluate("window.notReloaded = true")

    name = unique("web")
    page.goto(f"{ui}/vms")
    page.fill("#create-vm-form input[name=name]", name)
    page.fill("#create-vm-form input[name=vcpus]", "2")
    page.fill("#create-vm-form input[name=memory_mib]", "1024")
    page.click("#create-vm-form button[type=submit]")
    page.wait_for_selector(f"tr[data-name='{name}']")
    assert "2" in page.inner_text(f"tr[data-name='{name}']")
    (vm,) = vms_named(api, name)
    assert (vm["vcpus"], vm["memory_mib"]) == (2, 1024)

    # The other tab saw the job appear and finish with no reload, from the event stream alone.
    job = api.get("/jobs", params={"object_id": vm["id"], "limit": 1}).json()["items"][0]
    row = watcher.locator(f"#job-{job['id']}")
    row.wait_for()
    watcher.wait_for_selector(f"#job-{job['id']}[data-state=succeeded]")
    assert watcher.evaluate("window.notReloaded") is True
    assert name in row.inner_text()
    screenshot(watcher, "jobs")
    screenshot(page, "vms")

    # The VM's own page: configuration and its event console.
    page.click(f"tr[data-name='{name}'] a")
    page.wait_for_selector("#vm-console li")
    assert "vm.created" in page.inner_text("#vm-console")
    screenshot(page, "vm")

    # Acknowledge the vm.created event; the row updates live.
    event = next(
        e
        for e in api.get("/events", params={"object_id": vm["id"], "limit": 100}).json()["items"]
        if e["type"] == "vm.created"
    )
    page.goto(f"{ui}/events?show=all")
    wait_live(page)
    page.click(f"#event-{event['id']} button")
    page.wait_for_selector(f"#event-{event['id']}.acked")
    assert "acknowledged by admin" in page.inner_text(f"#event-{event['id']}")
    assert api.get(f"/events/{event['id']}").json()["acknowledged"] is True
    screenshot(page, "events")

    page.goto(f"{ui}/")
    wait_live(page)
    assert int(page.inner_text("#card-vms .big")) >= 1
    screenshot(page, "dashboard")
    watcher.close()


def test_backup_job_progress_live_and_schedule_error(
    page: Any, context: Any, ui: str, api: httpx.Client
) -> None:
    login(page, ui)
    page.goto(f"{ui}/backups")
    wait_live(page)
    before = api.get("/backups").json()["total"]
    page.click("#backups-list button[type=submit]")
    # The backup job runs in the background; the list shows the new backup once it is done.
    expect(page.locator("#backups-list tr[id^=backup-]")).to_have_count(before + 1, timeout=60_000)
    assert api.get("/backups").json()["total"] == before + 1
    screenshot(page, "backups")

    # A schedule the API refuses: its message shows next to the schedule form, the input is kept.
    page.fill("#backup-config-form input[name=interval_minutes]", "5")
    page.click("#backup-config-form button[type=submit]")
    error = page.locator("[data-error-for=backup-config]")
    assert "interval_minutes" in error.inner_text()
    assert page.input_value("#backup-config-form input[name=interval_minutes]") == "5"
    assert api.get("/backups/config").json()["interval_minutes"] != 5


def test_api_error_next_to_the_form(page: Any, ui: str, api: httpx.Client) -> None:
    login(page, ui)
    name = unique("dup")
    page.goto(f"{ui}/pools")
    for _ in range(2):
        page.fill("#create-pool-form input[name=name]", name)
        page.click("#create-pool-form button[type=submit]")
        page.wait_for_load_state()
    error = page.locator("[data-error-for=create-pool]")
    assert "already exists" in error.inner_text()
    assert page.input_value("#create-pool-form input[name=name]") == name
    assert len(api.get("/server-pools", params={"name": name}).json()["items"]) == 1
    screenshot(page, "pools")

    page.goto(f"{ui}/vms")
    page.fill("#create-vm-form input[name=name]", unique("bad"))
    page.fill("#create-vm-form input[name=memory_mib]", "lots")
    page.click("#create-vm-form button[type=submit]")
    assert "memory_mib" in page.locator("[data-error-for=create-vm]").inner_text()


def test_readonly_user_sees_no_actions_and_cannot_act(
    context: Any, page: Any, ui: str, api: httpx.Client
) -> None:
    # Something to look at: a VM and an open event.
    name = unique("ro")
    assert api.post("/vms", params={"wait": 30}, json={"name": name}).json()["state"] == "succeeded"
    login(page, ui, *READONLY)
    assert page.inner_text(".role") == "readonly"
    for view in ("vms", "events", "pools", "servers", "backups", "jobs", "trust"):
        page.goto(f"{ui}/{view}")
        assert page.locator("main form").count() == 0, f"{view} offers a form to a read-only user"
        assert page.locator("main button").count() == 0, f"{view} offers a button to a read-only user"
    page.goto(f"{ui}/vms")
    assert page.locator(f"tr[data-name='{name}']").count() == 1
    screenshot(page, "vms-readonly")

    # Even a hand-made POST with a valid CSRF token is refused, by the WS-API itself.
    csrf = page.evaluate("document.body.dataset.csrf")
    forged = unique("forged")
    answer = page.request.post(f"{ui}/vms", form={"csrf_token": csrf, "name": forged, "next": "/ui/vms"})
    assert answer.ok  # followed the redirect back to the page
    assert "admin" in answer.text() and 'data-error-for="page"' in answer.text()
    assert vms_named(api, forged) == []


def test_csrf_refused(page: Any, context: Any, ui: str, api: httpx.Client) -> None:
    login(page, ui)
    csrf = page.evaluate("document.body.dataset.csrf")
    for form in (
        {"name": unique("nocsrf")},
        {"name": unique("badcsrf"), "csrf_token": "not-the-token"},
    ):
        answer = page.request.post(f"{ui}/vms", form=form, max_redirects=0)
        assert answer.status == 403
        assert "could not be verified" in answer.text()
        assert vms_named(api, form["name"]) == []
    # The right token from another site (Origin) is refused as well.
    name = unique("xsite")
    answer = page.request.post(
        f"{ui}/vms",
        form={"name": name, "csrf_token": csrf},
        headers={"Origin": "https://evil.example"},
        max_redirects=0,
    )
    assert answer.status == 403 and vms_named(api, name) == []
    # The login form has its own token.
    fresh = context.browser.new_context(ignore_https_errors=True)
    try:
        answer = fresh.request.post(f"{ui}/login", form={"username": "admin", "password": ADMIN_PASSWORD})
        assert answer.status == 403 and "expired" in answer.text()
    finally:
        fresh.close()


def test_server_statistics_charts(page: Any, ui: str, api: httpx.Client) -> None:
    address = f"127.0.3.{uuid.uuid4().int % 250 + 1}"  # registered only (no agent password)
    job = api.post("/servers", params={"wait": 30}, json={"address": address, "name": unique("srv")}).json()
    assert job["state"] == "succeeded", job
    server_id = job["result"]["id"]
    now = time.time()
    samples = []
    for i in range(60):
        t = now - 3500 + i * 58
        samples += [
            {
                "object_type": "server",
                "object_id": server_id,
                "metric": "cpu_percent",
                "time": t,
                "value": 20 + (i % 10) * 6,
            },
            {
                "object_type": "server",
                "object_id": server_id,
                "metric": "memory_used_bytes",
                "time": t,
                "value": (2 + i / 30) * 2**30,
            },
            {
                "object_type": "server",
                "object_id": server_id,
                "metric": "memory_total_bytes",
                "time": t,
                "value": 8 * 2**30,
            },
        ]
    assert api.post("/statistics/ingest", json={"samples": samples}).status_code == 202

    login(page, ui)
    page.goto(f"{ui}/servers")
    page.click(f"#server-{server_id} a")
    charts = page.locator("figure.chart")
    assert charts.count() == 2
    cpu_path = charts.nth(0).locator("path.line-a").get_attribute("d")
    assert cpu_path and cpu_path.count("L") >= 50
    assert charts.nth(1).locator("path").count() == 2  # used and total
    assert "8 GiB" in charts.nth(1).inner_text()
    screenshot(page, "server")
    page.goto(f"{ui}/servers")
    screenshot(page, "servers")


def test_trust_page_shows_the_ca_and_makes_tokens(page: Any, ui: str, api: httpx.Client) -> None:
    login(page, ui)
    page.goto(f"{ui}/trust")
    assert page.inner_text("#ca-fingerprint").strip() == api.get("/ca").json()["fingerprint_sha256"]
    if not has_api_path(api, "POST", "/enrollment-tokens"):
        pytest.skip("this manager has no POST /api/v1/enrollment-tokens yet (trust issue)")
    page.fill("#create-token-form input[name=ttl_hours]", "2")
    page.click("#create-token-form button[type=submit]")
    token = page.inner_text("#new-token").strip()
    assert len(token) >= 16
    screenshot(page, "trust")
    page.reload()
    assert page.locator("#new-token").count() == 0  # shown once


def test_discover_server_and_start_stop_vm(
    page: Any, ui: str, api: httpx.Client, gui_manager: RunningManager, agent_process: Any
) -> None:
    server_name = unique("host")
    login(page, ui)
    page.goto(f"{ui}/servers")
    page.fill("#discover-form input[name=address]", "127.0.0.1")
    page.fill("#discover-form input[name=agent_port]", str(agent_process.port))
    page.fill("#discover-form input[name=agent_password]", agent_process.password)
    page.fill("#discover-form input[name=name]", server_name)
    page.click("#discover-form button[type=submit]")
    page.wait_for_selector(".note.success, .note.info, [data-error-for=discover]")
    assert page.locator("[data-error-for=discover]").count() == 0, page.inner_text(
        "[data-error-for=discover]"
    )
    (server,) = api.get("/servers", params={"name": server_name}).json()["items"]
    page.wait_for_selector(f"#server-{server['id']}")
    screenshot(page, "servers-discovered")

    if not has_api_path(api, "POST", "/vms/{}/start"):
        pytest.skip("this manager has no POST /api/v1/vms/{id}/start yet")
    name = unique("run")
    page.goto(f"{ui}/vms")
    page.fill("#create-vm-form input[name=name]", name)
    page.fill("#create-vm-form input[name=memory_mib]", "64")
    page.click("#create-vm-form details.boot summary")
    page.fill(
        "#create-vm-form input[name=kernel]", "/boot/vmlinuz-guest"
    )  # libvirt's test driver boots anything
    page.fill("#create-vm-form input[name=cmdline]", "console=hvc0")
    page.select_option("#create-vm-form select[name=server_id]", server["id"])
    page.click("#create-vm-form button[type=submit]")
    row = f"tr[data-name='{name}']"
    page.wait_for_selector(row)
    page.click(f"{row} button:text('Start')")
    page.wait_for_selector(f"{row}[data-state=running]", timeout=60_000)
    screenshot(page, "vm-running")
    page.click(f"{row} button:text('Stop')")
    page.wait_for_selector(f"{row}[data-state=stopped]", timeout=60_000)
