"""Users, roles, sessions and the agent's client certificate."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from appliance import pki
from tests.conftest import ADMIN_PASSWORD, RunningManager
from tests.manager.helpers import create, error_of, finished_job, unique


def test_everything_but_health_needs_auth(manager: RunningManager) -> None:
    with manager.client(user="") as anon:
        assert anon.get("/health").json() == {"status": "ok"}
        # the CA certificate is public: enrolling servers check it against the fingerprint they were given
        assert anon.get("/ca").json()["fingerprint_sha256"].count(":") == 31
        for path in (
            "/",
            "/vms",
            "/servers",
            "/jobs",
            "/events",
            "/statistics",
            "/backups",
            "/users",
            "/openapi.json",
            "/events/stream",
        ):
            r = anon.get(path)
            assert r.status_code == 401, path
            assert error_of(r)["code"] == "unauthorized"
            assert "Basic" in r.headers["www-authenticate"]
        assert anon.post("/vms", json={"name": "x"}).status_code == 401


def test_wrong_password_and_malformed_basic(manager: RunningManager) -> None:
    with manager.client(password="wrong-password") as c:
        assert c.get("/vms").status_code == 401
    with manager.client(user="") as c:
        r = c.get("/vms", headers={"authorization": "Basic !!!notbase64"})
        assert r.status_code == 401 and "malformed" in error_of(r)["message"]


def test_readonly_user_reads_but_cannot_act(manager: RunningManager, admin: httpx.Client) -> None:
    name = unique("viewer")
    create(admin, "users", {"name": name, "password": "viewer-pw-1", "role": "readonly"})
    with manager.client(user=name, password="viewer-pw-1") as viewer:
        assert viewer.get("/vms").status_code == 200
        me = viewer.get("/me").json()
        assert (me["name"], me["role"], me["kind"]) == (name, "readonly", "user") and me["id"]
        r = viewer.post("/vms", json={"name": unique("vm")})
        assert r.status_code == 403 and "admin" in error_of(r)["message"]
        assert viewer.get("/users").status_code == 403
        assert viewer.post("/backups").status_code == 403


def test_user_password_never_returned_and_hash_is_argon2(
    admin: httpx.Client, manager: RunningManager
) -> None:
    name = unique("op")
    user_id = create(admin, "users", {"name": name, "password": "op-password-1", "role": "admin"})
    user = admin.get(f"/users/{user_id}").json()
    assert "password" not in user and "password_hash" not in user
    import mysql.connector

    from appliance.manager.dburl import parse_db_url

    url = parse_db_url(manager.db_url)
    conn = mysql.connector.connect(
        user=url.user, password=url.password, host=url.host, port=url.port, database=url.database
    )
    cur = conn.cursor()
    cur.execute("SELECT password_hash FROM users WHERE name = %s", (name,))
    (stored,) = cur.fetchone()  # type: ignore[misc]
    conn.close()
    assert str(stored).startswith("$argon2id$")
    job = finished_job(admin, admin.patch(f"/users/{user_id}", json={"password": "op-password-2"}))
    assert "password" in job["summary"] or job["state"] == "succeeded"


def test_sessions_bearer_token_and_logout(manager: RunningManager) -> None:
    with manager.client(user="") as anon:
        bad = anon.post("/sessions", json={"username": "admin", "password": "nope"})
        assert bad.status_code == 401
        login = anon.post("/sessions", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert login.status_code == 201
        token, session_id = login.json()["token"], login.json()["id"]
        bearer = {"authorization": f"Bearer {token}"}
        assert anon.get("/vms", headers=bearer).status_code == 200
        mine = anon.get("/sessions", headers=bearer).json()["items"]
        assert any(s["id"] == session_id and s["current"] for s in mine)
        assert anon.delete(f"/sessions/{session_id}", headers=bearer).status_code == 204
        r = anon.get("/vms", headers=bearer)
        assert r.status_code == 401 and "expired" in error_of(r)["message"]
        assert anon.get("/vms", headers={"authorization": "Bearer made-up"}).status_code == 401


def test_last_admin_cannot_be_removed_or_demoted(admin: httpx.Client) -> None:
    users = admin.get("/users", params={"role": "admin"}).json()["items"]
    me = next(u for u in users if u["name"] == "admin")
    r = admin.delete(f"/users/{me['id']}")
    assert r.status_code == 409


def _agent_client(
    manager: RunningManager, tmp_path: Path, ca: pki.KeyPair, server_id: str, *, record: bool = True
) -> httpx.Client:
    """A client with an agent certificate: issued (and recorded) by the manager, or only signed by ``ca``."""
    key = pki.new_key()
    if record:
        from appliance.manager.config import StatePaths
        from appliance.manager.database import make_engine
        from appliance.manager.dburl import parse_db_url
        from appliance.manager.trust import CertificateAuthority

        engine = make_engine(parse_db_url(manager.db_url), pool_size=1)
        with engine.begin() as conn:
            cert = CertificateAuthority(StatePaths(manager.state_dir)).issue_agent(
                conn, key.public_key(), server_id
            )
        engine.dispose()
    else:
        cert = pki.issue_leaf(ca, key.public_key(), server_id, server=False)
    pki.save_pair(pki.KeyPair(key, cert), tmp_path / "agent.crt", tmp_path / "agent.key")
    ctx = ssl.create_default_context(cafile=str(manager.ca))
    ctx.load_cert_chain(tmp_path / "agent.crt", tmp_path / "agent.key")
    return httpx.Client(base_url=manager.base, verify=ctx, timeout=30)


def test_agent_identity_comes_from_its_certificate(
    manager: RunningManager, tmp_path: Path, admin: httpx.Client
) -> None:
    ca = pki.load_pair(manager.ca, manager.state_dir / "tls" / "ca.key")
    server_id = "5f0c1d2e-0000-4000-8000-00000000abcd"
    event_id = unique("ev")
    with _agent_client(manager, tmp_path, ca, server_id) as agent:
        body = {
            "events": [
                {
                    "id": event_id,
                    "time": 1_764_000_000.5,
                    "severity": "warning",
                    "type": "vm.started",
                    "object_type": "vm",
                    "object_id": "0a0b",
                    "message": "started by HA",
                }
            ]
        }
        first = agent.post("/events/ingest", json=body)
        assert first.status_code == 202 and first.json() == {"accepted": 1, "duplicates": 0}
        again = agent.post("/events/ingest", json=body)
        assert again.json() == {"accepted": 0, "duplicates": 1}
        # agents push telemetry; they are not users
        assert agent.get("/vms").status_code == 403
    items = admin.get("/events", params={"object_id": "0a0b", "limit": 1000}).json()["items"]
    mine = [e for e in items if e["message"] == "started by HA"]
    assert len(mine) == 1 and mine[0]["source"] == server_id


def test_certificate_signed_but_never_issued_is_refused(manager: RunningManager, tmp_path: Path) -> None:
    ca = pki.load_pair(manager.ca, manager.state_dir / "tls" / "ca.key")
    with _agent_client(manager, tmp_path, ca, "6f0c1d2e-0000-4000-8000-00000000abcd", record=False) as agent:
        r = agent.post("/events/ingest", json={"events": []})
    assert r.status_code == 401 and "unknown" in error_of(r)["message"]


def test_certificate_from_another_ca_is_refused(manager: RunningManager, tmp_path: Path) -> None:
    rogue = pki.create_ca("rogue CA")
    with (
        pytest.raises(httpx.HTTPError),
        _agent_client(manager, tmp_path, rogue, "evil", record=False) as agent,
    ):
        agent.post("/events/ingest", json={"events": []})
    with manager.client() as c:  # and the manager keeps serving
        assert c.get("/health").status_code == 200


def test_ca_endpoint_matches_cli(manager: RunningManager, admin: httpx.Client) -> None:
    import subprocess
    import sys

    body = admin.get("/ca").json()
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance",
            "manager",
            "ca-fingerprint",
            "--state-dir",
            str(manager.state_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert body["fingerprint_sha256"] == cli.stdout.strip() == pki.fingerprint(pki.load_cert(manager.ca))
    assert body["certificate_pem"].startswith("-----BEGIN CERTIFICATE-----")


ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop"


def test_ssh_keys_and_sessions_opened_by_key(
    manager: RunningManager, admin: httpx.Client, tmp_path: Path
) -> None:
    name = unique("keyuser")
    user_id = create(admin, "users", {"name": name, "password": "key-user-pw-1", "role": "readonly"})
    with manager.client(user=name, password="key-user-pw-1") as me:
        added = me.post(f"/users/{user_id}/ssh-keys", json={"public_key": ED25519})
        assert added.status_code == 201, added.text
        key = added.json()
        assert key["fingerprint"].startswith("SHA256:") and key["comment"] == "alice@laptop"
        assert me.post(f"/users/{user_id}/ssh-keys", json={"public_key": ED25519}).status_code == 409
        others = admin.get("/users", params={"name": "admin"}).json()["items"][0]["id"]
        assert me.get(f"/users/{others}/ssh-keys").status_code == 403
        for line in ("ssh-ed25519 bm90IGEga2V5", "ssh-nonsense AAAAC3NzaC1lZDI1NTE5", "x"):
            bad = me.post(f"/users/{user_id}/ssh-keys", json={"public_key": line})
            assert bad.status_code == 400, (line, bad.text)
        # a user cannot open a session with a key: only the SSH front end (its companion certificate) can
        r = me.post("/sessions", json={"username": name, "ssh_public_key": ED25519})
        assert r.status_code == 403
    ctx = ssl.create_default_context(cafile=str(manager.ca))
    ctx.load_cert_chain(
        manager.state_dir / "tls" / "companion.crt", manager.state_dir / "tls" / "companion.key"
    )
    with httpx.Client(base_url=manager.base, verify=ctx) as companion:
        session = companion.post("/sessions", json={"username": name, "ssh_public_key": ED25519})
        assert session.status_code == 201 and session.json()["user"] == name
        assert (
            companion.post("/sessions", json={"username": "admin", "ssh_public_key": ED25519}).status_code
            == 401
        )
        assert companion.get("/vms").status_code == 403  # the companion itself may do nothing else
    with manager.client(user="") as anon:
        bearer = {"authorization": f"Bearer {session.json()['token']}"}
        assert anon.get("/me", headers=bearer).json()["name"] == name
    assert admin.delete(f"/users/{user_id}/ssh-keys/{key['id']}").status_code == 204
    with httpx.Client(base_url=manager.base, verify=ctx) as companion:
        assert (
            companion.post("/sessions", json={"username": name, "ssh_public_key": ED25519}).status_code == 401
        )
