"""Statistics: batch ingest (idempotent), raw series, roll-ups past the raw retention."""

from __future__ import annotations

import time

import httpx

from appliance.manager import statistics
from appliance.manager.database import make_engine
from appliance.manager.dburl import parse_db_url
from tests.conftest import RunningManager
from tests.manager.helpers import error_of, unique


def _samples(object_id: str, start: float, count: int, step: float = 10.0) -> list[dict[str, object]]:
    return [
        {
            "object_type": "vm",
            "object_id": object_id,
            "metric": "cpu_percent",
            "time": start + i * step,
            "value": float(i % 100),
        }
        for i in range(count)
    ]


def test_ingest_is_idempotent_and_queryable(admin: httpx.Client) -> None:
    vm = unique("a1b2").split("-")[1]
    now = time.time()
    body = {"samples": _samples(vm, now - 600, 50)}
    assert admin.post("/statistics/ingest", json=body).json() == {"accepted": 50}
    assert admin.post("/statistics/ingest", json=body).json() == {"accepted": 0}
    series = admin.get(
        "/statistics",
        params={
            "object_type": "vm",
            "object_id": vm,
            "metric": "cpu_percent",
            "start": now - 3600,
            "end": now,
        },
    ).json()
    assert series["resolution"] == "raw"
    assert [p["value"] for p in series["points"]] == [float(i) for i in range(50)]


def test_ingest_refuses_bad_samples_whole(admin: httpx.Client) -> None:
    vm = unique("c3d4").split("-")[1]
    good = _samples(vm, time.time() - 100, 3)
    bad = [
        *good,
        {"object_type": "vm", "object_id": vm, "metric": "cpu_percent", "time": "yesterday", "value": 1},
    ]
    r = admin.post("/statistics/ingest", json={"samples": bad})
    assert r.status_code == 400 and "time" in error_of(r)["message"]
    series = admin.get(
        "/statistics", params={"object_type": "vm", "object_id": vm, "metric": "cpu_percent"}
    ).json()
    assert series["points"] == []
    too_many = {"samples": _samples(vm, 0, 10_001, 1.0)}
    assert admin.post("/statistics/ingest", json=too_many).status_code == 400
    r = admin.get(
        "/statistics", params={"object_type": "vm", "object_id": vm, "metric": "cpu", "start": 10, "end": 5}
    )
    assert r.status_code == 400


def test_downsampling_keeps_averages(manager: RunningManager, admin: httpx.Client) -> None:
    vm = unique("e5f6").split("-")[1]
    now = time.time()
    old_start = (now - 3 * 24 * 3600) // 3600 * 3600  # three days ago, on an hour boundary
    # one hour of 10-second samples with values 0..99 repeating
    assert (
        admin.post("/statistics/ingest", json={"samples": _samples(vm, old_start, 360)}).json()["accepted"]
        == 360
    )
    engine = make_engine(parse_db_url(manager.db_url), pool_size=1)
    try:
        counts = statistics.downsample(engine, now=now)
    finally:
        engine.dispose()
    assert counts["raw_folded"] >= 12
    params = {
        "object_type": "vm",
        "object_id": vm,
        "metric": "cpu_percent",
        "start": old_start,
        "end": old_start + 3599,
    }
    raw = admin.get("/statistics", params={**params, "resolution": "raw"}).json()["points"]
    assert raw == []  # past the raw retention
    five = admin.get("/statistics", params=params).json()
    assert five["resolution"] == 300 and len(five["points"]) == 12
    assert sum(p["samples"] for p in five["points"]) == 360
    first = five["points"][0]  # values 0..29
    assert (first["min"], first["max"], first["value"]) == (0.0, 29.0, 14.5)


def test_choose_resolution() -> None:
    r = statistics.Retention()
    assert statistics.choose_resolution(1000, 1000 + 3600, r) == 0
    assert statistics.choose_resolution(0, 2 * 24 * 3600, r) == 300
    assert statistics.choose_resolution(0, 30 * 24 * 3600, r) == 3600
