"""Answer sources: kernel arguments, pinned http(s) on loopback, labelled disks (hd:LABEL=, OEMDRV)."""

from __future__ import annotations

import datetime
import functools
import hashlib
import http.server
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.errors import ConfigError, UsageError
from appliance.installer.sources import fetch_kickstart, find_oemdrv_kickstart, parse_cmdline

from .conftest import need_root

KS = "rootpw --lock\n# a kickstart served for the test\n"


def test_parse_cmdline() -> None:
    boot = parse_cmdline("BOOT_IMAGE=/live/vmlinuz boot=live inst.auto ks=cdrom:/ks.cfg "
                         "ks.sha256=AB:cd appliance.role=server quiet -- ks=ignored")
    assert boot.ks == "cdrom:/ks.cfg" and boot.ks_sha256 == "AB:cd" and boot.auto and boot.role == "server"
    assert parse_cmdline("inst.ks=https://h/k.cfg inst.ks.tlsfp=11").ks_tlsfp == "11"
    assert parse_cmdline("quiet").ks is None


def test_cdrom_reads_the_live_medium(tmp_path: Path) -> None:
    (tmp_path / "ks.cfg").write_text(KS)
    assert fetch_kickstart("cdrom:/ks.cfg", medium=tmp_path) == (KS, "cdrom:/ks.cfg")


@pytest.fixture
def web_root(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    (root / "server.ks").write_text(KS)
    return root


def _serve(root: Path, context: ssl.SSLContext | None) -> Iterator[str]:
    def handler(*args, **kwargs):  # type: ignore[no-untyped-def]
        return http.server.SimpleHTTPRequestHandler(*args, directory=str(root), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if context else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_url(web_root: Path) -> Iterator[str]:
    yield from _serve(web_root, None)


@pytest.fixture
def https_server(web_root: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ks-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(hours=1)).sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    fingerprint = cert.fingerprint(hashes.SHA256()).hex(":")
    for url in _serve(web_root, context):
        yield url, fingerprint


def test_http_needs_a_pin_and_checks_it(http_url: str) -> None:
    url = f"{http_url}/server.ks"
    with pytest.raises(UsageError, match="not pinned"):
        fetch_kickstart(url)
    digest = hashlib.sha256(KS.encode()).hexdigest()
    assert fetch_kickstart(url, sha256=digest)[0] == KS
    with pytest.raises(ConfigError, match=r"ks\.sha256 pins"):
        fetch_kickstart(url, sha256="00" * 32)
    with pytest.raises(ConfigError, match="HTTP 404"):
        fetch_kickstart(f"{http_url}/missing.ks", sha256=digest)


def test_a_network_source_waits_for_the_network(web_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port nobody listens on yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(web_root))
    started: list[http.server.ThreadingHTTPServer] = []

    def start_late() -> None:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        started.append(server)
        server.serve_forever()

    threading.Timer(2.5, start_late).start()
    digest = hashlib.sha256(KS.encode()).hexdigest()
    try:
        url = f"http://127.0.0.1:{port}/server.ks"
        assert fetch_kickstart(url, sha256=digest, network_wait_s=30)[0] == KS
        assert "waiting for the network to reach 127.0.0.1" in capsys.readouterr().out
        # a wrong path is not waited for
        t0 = time.monotonic()
        with pytest.raises(ConfigError, match="HTTP 404"):
            fetch_kickstart(f"http://127.0.0.1:{port}/missing.ks", sha256=digest, network_wait_s=30)
        assert time.monotonic() - t0 < 5
    finally:
        for server in started:
            server.shutdown()
            server.server_close()


def test_a_network_that_never_comes_up_fails_after_the_wait() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="Connection refused"):
        fetch_kickstart(f"http://127.0.0.1:{port}/ks.cfg", sha256="00" * 32, network_wait_s=3)
    assert 3 <= time.monotonic() - t0 < 10


def test_https_pinned_by_certificate_fingerprint(https_server: tuple[str, str]) -> None:
    base, fingerprint = https_server
    assert fetch_kickstart(f"{base}/server.ks", tlsfp=fingerprint.upper())[0] == KS
    with pytest.raises(ConfigError, match=r"ks\.tlsfp pins"):
        fetch_kickstart(f"{base}/server.ks", tlsfp="ab" * 32)
    # Without a pin the self-signed certificate is not trusted.
    with pytest.raises(ConfigError, match="failed"):
        fetch_kickstart(f"{base}/server.ks")


@pytest.fixture
def labelled_disk(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An ext4 filesystem image on a loop device; the test labels it."""
    need_root()
    image = tmp_path / "ks.img"
    with image.open("wb") as handle:
        handle.truncate(16 * 1024 * 1024)
    device = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True, text=True,
                            check=True).stdout.strip()
    try:
        yield device, tmp_path
    finally:
        subprocess.run(["losetup", "--detach", device], check=False)


def _make_fs(device: str, label: str, files: dict[str, str], scratch: Path) -> None:
    content = scratch / "content"
    content.mkdir(exist_ok=True)
    for name, text in files.items():
        (content / name).write_text(text)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", label, "-d", str(content), device], check=True)


def test_hd_label_and_oemdrv(labelled_disk: tuple[str, Path]) -> None:
    device, scratch = labelled_disk
    _make_fs(device, "KSTEST42", {"server.ks": KS}, scratch)
    assert fetch_kickstart("hd:LABEL=KSTEST42:/server.ks")[0] == KS
    assert fetch_kickstart(f"hd:{device}:/server.ks")[0] == KS
    with pytest.raises(ConfigError, match=r"has no file /other\.ks"):
        fetch_kickstart("hd:LABEL=KSTEST42:/other.ks")
    with pytest.raises(ConfigError, match="no filesystem labelled NOSUCHLABEL"):
        fetch_kickstart("hd:LABEL=NOSUCHLABEL:/server.ks")
    assert "appliance-ks-" not in Path("/proc/self/mountinfo").read_text()

    _make_fs(device, "OEMDRV", {"ks.cfg": KS}, scratch)
    found = find_oemdrv_kickstart()
    assert found is not None and found[0] == KS and device in found[1]
    assert "appliance-ks-" not in Path("/proc/self/mountinfo").read_text()
