"""Hostile inputs and the trust rules: the agent answers with a Fault or refuses the connection,
and keeps serving."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
import uuid
import xmlrpc.client
from pathlib import Path

import pytest

from appliance.server import rpcproto
from appliance.server.config import Limits

from .conftest import PASSWORD, AgentFactory, ManagerIdentity, RunningAgent, make_identity

AUTH = {"Authorization": "Basic " + base64.b64encode(f"oracle:{PASSWORD}".encode()).decode()}


def _fault_of(body: bytes) -> xmlrpc.client.Fault:
    with pytest.raises(xmlrpc.client.Fault) as info:
        xmlrpc.client.loads(body)
    return info.value


def _still_serving(ra: RunningAgent) -> None:
    assert ra.proxy().discover_server()["server_uuid"] == ra.agent.server_uuid


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<methodCall><methodName>get_vm_info</methodName><params><param><value><string>&lol9;</string></value>
</param></params></methodCall>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<methodCall><methodName>get_vm_info</methodName><params><param><value><string>&e;</string></value>
</param></params></methodCall>"""


def test_entity_bombs_and_external_entities_are_faults(start_agent: AgentFactory) -> None:
    ra = start_agent()
    for doc in (BILLION_LAUGHS, EXTERNAL_ENTITY):
        status, body = ra.raw_post(doc, AUTH)
        assert status == 200
        fault = _fault_of(body)
        assert fault.faultCode == rpcproto.PARSE_ERROR
        assert "not a valid XML-RPC document" in fault.faultString
    _still_serving(ra)


def test_deep_nesting_and_garbage_are_faults(start_agent: AgentFactory) -> None:
    ra = start_agent()
    deep = (
        b"<methodCall><methodName>create_vm</methodName><params><param>"
        + b"<value><array><data>" * 5000
        + b"</data></array></value>" * 5000
        + b"</param></params></methodCall>"
    )
    status, body = ra.raw_post(deep, AUTH)
    assert status == 200 and _fault_of(body).faultCode == rpcproto.INVALID_REQUEST
    for junk in (b"", b"not xml at all", b"<methodResponse/>", b"\xff\xfe<x>"):
        status, body = ra.raw_post(junk, AUTH)
        assert status == 200
        assert _fault_of(body).faultCode in (rpcproto.PARSE_ERROR, rpcproto.INVALID_REQUEST)
    _still_serving(ra)


def test_huge_body_is_refused_without_reading_it(start_agent: AgentFactory) -> None:
    ra = start_agent(limits=Limits(max_request_bytes=64 * 1024))
    # Announce 100 MB and stream it; the agent answers 413 and closes long before the end.
    ctx = ra.tls_context()
    sent = 0
    status_line = b""
    with (
        socket.create_connection(("127.0.0.1", ra.agent.port), timeout=30) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        head = (
            "POST / HTTP/1.1\r\nHost: agent\r\nContent-Type: text/xml\r\n"
            f"Authorization: {AUTH['Authorization']}\r\nContent-Length: {100 * 1024 * 1024}\r\n\r\n"
        )
        conn.sendall(head.encode())
        chunk = b"<" * 65536
        try:
            while sent < 100 * 1024 * 1024:
                conn.sendall(chunk)
                sent += len(chunk)
        except (ssl.SSLError, OSError):
            pass
        try:
            status_line = conn.recv(200)
        except (ssl.SSLError, OSError):
            pass
    assert sent < 100 * 1024 * 1024, "the agent read the whole 100 MB body"
    assert status_line == b"" or status_line.startswith(b"HTTP/1.1 413")
    _still_serving(ra)
    # The announced size alone is enough to refuse.
    status, _ = ra.raw_post(b"x" * (64 * 1024 + 1), AUTH)
    assert status == 413


def test_unauthenticated_and_wrong_password_are_refused(start_agent: AgentFactory) -> None:
    ra = start_agent()
    for proxy in (ra.proxy(password=None), ra.proxy(password="wrong")):
        with pytest.raises(xmlrpc.client.ProtocolError) as info:
            proxy.discover_server()
        assert info.value.errcode == 401
    user = "Basic " + base64.b64encode(f"root:{PASSWORD}".encode()).decode()
    status, _ = ra.raw_post(xmlrpc.client.dumps((), "discover_server").encode(), {"Authorization": user})
    assert status == 401
    _still_serving(ra)


def test_no_password_set_refuses_everyone(start_agent: AgentFactory) -> None:
    ra = start_agent(password=None)
    with pytest.raises(xmlrpc.client.ProtocolError) as info:
        ra.proxy().discover_server()
    assert info.value.errcode == 401


def test_concurrent_clients(start_agent: AgentFactory) -> None:
    ra = start_agent()
    errors: list[BaseException] = []

    def client() -> None:
        try:
            proxy = ra.proxy()
            for _ in range(5):
                assert proxy.discover_server()["server_uuid"] == ra.agent.server_uuid
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=client) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]


def _handshake_refused(ra: RunningAgent, ctx: ssl.SSLContext) -> bool:
    """True if the agent refuses the TLS session (at the handshake or on the first request)."""
    proxy = xmlrpc.client.ServerProxy(ra.url, context=ctx)
    try:
        proxy.discover_server()
    except (ssl.SSLError, ConnectionError, OSError):
        return True
    except xmlrpc.client.ProtocolError:
        return False
    return False


def test_ownership_switches_to_client_certificates(
    start_agent: AgentFactory, manager: ManagerIdentity, tmp_path: Path
) -> None:
    ra = start_agent()
    password_proxy = ra.proxy()
    password_proxy.discover_server()  # keep-alive connection opened before ownership
    result = password_proxy.take_ownership(
        manager.uuid,
        manager.ca_pem,
        "https://127.0.0.1:7002/api/v1/events/ingest",
        "https://127.0.0.1:7002/api/v1/statistics/ingest",
        manager.client_cert_for(ra.agent),
    )
    assert result == {
        "server_uuid": ra.agent.server_uuid,
        "manager_uuid": manager.uuid,
        "owned": True,
        "push_certificate": True,
    }
    # The open password connection is refused on its next request; new ones cannot even get in.
    with pytest.raises(xmlrpc.client.ProtocolError) as info:
        password_proxy.discover_server()
    assert info.value.errcode == 403
    assert _handshake_refused(ra, ra.tls_context())
    # A certificate from another CA is refused at the TLS handshake.
    stranger = make_identity(tmp_path, "stranger")
    assert _handshake_refused(ra, ra.tls_context(stranger.cert_path, stranger.key_path))
    # A certificate from the right CA that is not the manager's (e.g. another server's) gets 403.
    other_server = make_identity(tmp_path, "other-server", ca=manager.ca, cn=str(uuid.uuid4()))
    with pytest.raises(xmlrpc.client.ProtocolError) as info:
        ra.proxy(identity=other_server).discover_server()
    assert info.value.errcode == 403
    # The owner gets in, and a second manager cannot take over.
    owner = ra.proxy(identity=manager)
    assert owner.discover_server()["manager_uuid"] == manager.uuid
    with pytest.raises(xmlrpc.client.Fault) as info:
        owner.take_ownership(str(uuid.uuid4()), manager.ca_pem, "https://a/e", "https://a/s")
    fault = info.value
    assert fault.faultCode == rpcproto.FORBIDDEN
    # Ownership survives an agent restart.
    ra.agent.stop()
    ra2 = start_agent(state_dir=ra.state_dir)
    assert ra2.proxy(identity=manager).discover_server()["owned"] is True
    assert _handshake_refused(ra2, ra2.tls_context())
    # Release: back to passwords.
    assert ra2.proxy(identity=manager).release_ownership(manager.uuid) == {
        "server_uuid": ra2.agent.server_uuid,
        "owned": False,
    }
    time.sleep(0.1)
    assert ra2.proxy().discover_server()["owned"] is False


def test_client_certificate_for_another_key_is_refused(
    start_agent: AgentFactory, manager: ManagerIdentity
) -> None:
    ra = start_agent()
    from appliance import pki

    wrong_key = pki.issue_leaf(manager.ca, pki.new_key().public_key(), ra.agent.server_uuid, server=False)
    with pytest.raises(xmlrpc.client.Fault) as info:
        ra.proxy().take_ownership(
            manager.uuid, manager.ca_pem, "https://m/e", "https://m/s", pki.cert_pem(wrong_key).decode()
        )
    fault = info.value
    assert fault.faultCode == rpcproto.CONFIG_ERROR and "another key" in fault.faultString
    assert ra.proxy().discover_server()["owned"] is False  # nothing changed
