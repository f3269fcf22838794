"""Bad input gets a 4xx with a clear message, never a 500 and never a partial write."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import RunningManager
from tests.manager.helpers import error_of, unique


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "JSON"),
        (b"[1, 2]", "body"),
        (b'{"name": 5}', "name"),
        (b'{"name": "ok", "vcpus": "four"}', "vcpus"),
        (b'{"name": "ok", "vcpus": 100000000000000000000000}', "vcpus"),
        (b'{"name": "ok", "colour": "red"}', "colour"),
        (b'{"name": "ok", "description": "\\ud800"}', "description"),
        (b'{"name": "ok", "memory_mib": 16}', "memory_mib"),
        (b'{"name": ""}', "name"),
        (b"", "body"),
    ],
)
def test_malformed_bodies(admin: httpx.Client, body: bytes, fragment: str) -> None:
    before = admin.get("/vms", params={"name": "ok"}).json()["total"]
    r = admin.post("/vms", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    err = error_of(r)
    assert err["code"] == "invalid_request" and fragment.lower() in err["message"].lower()
    assert admin.get("/vms", params={"name": "ok"}).json()["total"] == before


def test_empty_patch_is_refused(admin: httpx.Client) -> None:
    r = admin.patch("/vms/whatever", json={})
    assert r.status_code == 400 and "at least one field" in error_of(r)["message"]


def test_oversized_body_is_413(admin: httpx.Client) -> None:
    big = b'{"name": "x", "description": "' + b"a" * 2_000_000 + b'"}'
    r = admin.post("/vms", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert error_of(r)["code"] == "payload_too_large"


def test_oversized_chunked_body_is_413(manager: RunningManager) -> None:
    def chunks():  # no Content-Length: the limit must hold while streaming
        yield b'{"name": "x", "description": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}'

    with manager.client() as c:
        r = c.post("/vms", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_unknown_route_and_method(admin: httpx.Client) -> None:
    r = admin.get("/no-such-thing")
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    r = admin.put("/vms")
    assert r.status_code == 405 and error_of(r)["code"] == "method_not_allowed"


def test_backup_config_limits(admin: httpx.Client) -> None:
    for body in ({"interval_minutes": 359}, {"interval_minutes": 43_201}, {"keep": 0}, {"keep": 501}):
        r = admin.put("/backups/config", json=body)
        assert r.status_code == 400, body
    r = admin.put("/backups/config", json={"interval_minutes": 720, "keep": 5}, params={"wait": 30})
    assert r.status_code == 202 and r.json()["state"] == "succeeded"
    assert admin.get("/backups/config").json() == {"interval_minutes": 720, "keep": 5}


def test_names_with_unicode_and_long_values(admin: httpx.Client) -> None:
    r = admin.post("/vms", json={"name": unique("v"), "description": "ü" * 256})
    assert r.status_code == 400 and "description" in error_of(r)["message"]
    r = admin.post("/vms", json={"name": "v" * 65})
    assert r.status_code == 400
