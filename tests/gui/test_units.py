"""The GUI's pure pieces: chart geometry, the newest-events cursor, SSE relaying, sessions, redirects."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time

import pytest

from appliance.gui import charts
from appliance.gui.config import api_base_at, api_base_for
from appliance.gui.queries import find_cursor
from appliance.gui.sessions import SessionStore
from appliance.gui.stream import relay_block
from appliance.gui.web import safe_next


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 1.0), (0.7, 1.0), (1, 1.0), (1.2, 2.0), (2.2, 2.5), (3, 5.0), (7, 10.0), (99, 100.0)],
)
def test_nice_ceiling(value: float, expected: float) -> None:
    assert charts.nice_ceiling(value) == pytest.approx(expected)


def test_split_runs_cuts_at_gaps() -> None:
    points = [(0, 1), (10, 1), (20, 1), (200, 1), (210, 1)]
    assert [len(r) for r in charts.split_runs(points, 30)] == [3, 2]


def test_line_chart_maps_values_into_the_plot() -> None:
    c = charts.line_chart(
        "CPU", [("cpu", [(100.0, 0.0), (200.0, 50.0), (300.0, 100.0)])], start=100, end=300, y_max=100
    )
    (line,) = c.lines
    coords = [tuple(map(float, p.split(","))) for p in line.d.lstrip("M").split(" L")]
    assert coords[0] == (c.left, c.top + c.plot_height)  # (start, 0) bottom left
    assert coords[-1] == (c.left + c.plot_width, c.top)  # (end, max) top right
    assert coords[1][1] == pytest.approx(c.top + c.plot_height / 2, abs=0.1)
    assert line.last == "100%" or line.last == "100"
    assert [t.label for t in c.y_ticks] == ["0", "25", "50", "75", "100"]
    assert not c.empty


def test_line_chart_breaks_the_line_at_a_gap_and_says_when_empty() -> None:
    pts = [(float(t), 1.0) for t in (0, 10, 20, 30, 1000, 1010, 1020)]
    c = charts.line_chart("x", [("a", pts)], start=0, end=1020)
    assert c.lines[0].d.count("M") == 2
    empty = charts.line_chart("x", [("a", [])], start=0, end=3600)
    assert empty.empty and empty.lines[0].last == "no data"


def test_chart_time_ticks_are_round() -> None:
    c = charts.line_chart("x", [("a", [])], start=3600 * 10 + 17, end=3600 * 11 + 17)
    assert [t.label for t in c.x_ticks] == ["10:10", "10:20", "10:30", "10:40", "10:50", "11:00"]


def test_formats() -> None:
    assert charts.format_bytes(3 * 2**30) == "3 GiB"
    assert charts.format_bytes(512) == "512 B"
    assert charts.format_percent(5.25) == "5.2%" or charts.format_percent(5.25) == "5.3%"
    assert charts.format_percent(42.4) == "42%"


def _counter(ids: list[int], calls: list[int]):  # type: ignore[no-untyped-def]
    async def count_after(since: int) -> int:
        calls.append(since)
        return sum(1 for i in ids if i > since)

    return count_after


@pytest.mark.parametrize(
    "ids",
    [
        list(range(1, 501)),  # no gaps
        list(range(1, 200)) + list(range(5000, 5300)),  # a big gap (ignored duplicate inserts)
        list(range(1, 20)),  # fewer events than asked for
        [],
        list(range(1, 100_000, 7)),  # sparse: a filter matching every 7th event
    ],
)
def test_find_cursor_never_overshoots(ids: list[int]) -> None:
    calls: list[int] = []
    # In a thread of its own: the browser tests' Playwright loop may be running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        since = pool.submit(asyncio.run, find_cursor(_counter(ids, calls), 50)).result()
    after = [i for i in ids if i > since]
    assert len(after) >= min(50, len(ids))
    assert len(calls) <= 8
    if ids and ids == list(range(1, 501)):
        assert since == 450 and len(calls) == 2


def test_relay_block_keeps_id_and_data_only() -> None:
    block = ["id: 42", "event: vm.created", 'data: {"id": 42, "type": "vm.created"}']
    assert relay_block(block) == b'id: 42\ndata: {"id": 42, "type": "vm.created"}\n\n'
    assert relay_block([": keep-alive"]) == b": keep-alive\n\n"
    assert relay_block(["retry: 2000"]) is None
    assert relay_block(["id: nope", "data: x"]) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/ui/vms", "/ui/vms"),
        ("/ui/vms?state=running", "/ui/vms?state=running"),
        ("https://evil.example/ui/", "/ui/"),
        ("//evil.example/ui/", "/ui/"),
        ("/api/v1/vms", "/ui/"),
        ("/ui\\..\\x", "/ui/"),
        (None, "/ui/"),
    ],
)
def test_safe_next_stays_in_the_gui(value: str | None, expected: str) -> None:
    assert safe_next(value, "/ui/", "/ui") == expected


def test_api_base() -> None:
    assert api_base_for("0.0.0.0:7002") == "https://127.0.0.1:7002/api/v1"
    assert api_base_for("[::]:7443") == "https://[::1]:7443/api/v1"
    assert api_base_at("10.1.2.3", 7002) == "https://10.1.2.3:7002/api/v1"


LOGIN = {"id": "s1", "token": "secret-token", "user": "admin", "role": "admin"}


def test_session_cookie_is_signed_and_never_holds_the_token() -> None:
    store = SessionStore()
    session = store.create(LOGIN, time.time() + 60)
    cookie = store.cookie_value(session)
    assert "secret-token" not in cookie
    assert store.lookup(cookie) is session
    assert store.lookup(cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")) is None
    assert SessionStore().lookup(cookie) is None  # another process's key
    store.drop(session)
    assert store.lookup(cookie) is None


def test_expired_sessions_are_gone_and_the_store_is_bounded() -> None:
    store = SessionStore(max_sessions=3)
    old = store.create(LOGIN, time.time() - 1)
    assert store.lookup(store.cookie_value(old)) is None
    for _ in range(5):
        store.create(LOGIN, time.time() + 60)
    assert len(store) == 3


def test_csrf_and_login_nonce() -> None:
    store = SessionStore()
    session = store.create(LOGIN, time.time() + 60)
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok("") and not session.csrf_ok(None) and not session.csrf_ok(session.csrf + "x")
    nonce, cookie = store.new_login_nonce()
    assert store.login_nonce_ok(cookie, nonce)
    assert not store.login_nonce_ok(cookie, nonce + "x")
    assert not store.login_nonce_ok(None, nonce)
    other_nonce, _ = store.new_login_nonce()
    assert not store.login_nonce_ok(cookie, other_nonce)
