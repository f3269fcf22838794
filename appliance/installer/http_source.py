"""Fetching a kickstart over http(s): pinned by its SHA-256 or by the server certificate's fingerprint,
retried while the network comes up. Imported only for a network source (ssl and http.client are
slow to load under emulation, and the interactive install never needs them)."""

from __future__ import annotations

import errno
import hashlib
import http.client
import socket
import ssl
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse

from appliance.errors import ConfigError, UsageError
from appliance.installer.sources import FETCH_TIMEOUT_S, MAX_KICKSTART_BYTES, NETWORK_RETRY_S, plain_hex


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection that checks the server certificate against one pinned fingerprint."""

    def __init__(self, *args: Any, fingerprint: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fingerprint = fingerprint

    def connect(self) -> None:
        super().connect()
        der = self.sock.getpeercert(binary_form=True)
        actual = hashlib.sha256(der or b"").hexdigest()
        if actual != self.fingerprint:
            self.close()
            raise ConfigError(
                f"the kickstart server's certificate has SHA-256 fingerprint {actual}, but ks.tlsfp pins "
                f"{self.fingerprint}", "check ks.tlsfp= (openssl x509 -noout -fingerprint -sha256 -in CERT)")


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    """HTTPS whose trust is one pinned certificate fingerprint instead of the CA store."""

    def __init__(self, fingerprint: str) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # trust comes from the pin, checked on connect
        super().__init__(context=context)
        self._pin_context = context
        self.fingerprint = plain_hex(fingerprint)

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_PinnedHTTPSConnection, req, context=self._pin_context,  # type: ignore[arg-type]
                            fingerprint=self.fingerprint)


def network_not_ready(err: urllib.error.URLError) -> bool:
    """Whether a failed fetch looks like a network still coming up (worth waiting for), not a wrong
    URL, a refused certificate or an HTTP error."""
    reason = err.reason
    if isinstance(err, urllib.error.HTTPError) or isinstance(reason, ssl.SSLError):
        return False
    if isinstance(reason, (ConnectionError, socket.gaierror, TimeoutError)):
        return True
    return isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH,
                                                            errno.EADDRNOTAVAIL)


def fetch_http(url: str, sha256: str | None, tlsfp: str | None, network_wait_s: float) -> bytes:
    scheme = urlparse(url).scheme
    if scheme == "http" and not sha256:
        raise UsageError(f"ks={url} is plain http and not pinned",
                         "add ks.sha256=<sha256sum of the file> or serve it over https")
    if tlsfp and scheme != "https":
        raise UsageError("ks.tlsfp= pins a TLS certificate: use an https:// URL", "or pin with ks.sha256=")
    handlers: list[urllib.request.BaseHandler] = [_PinnedHTTPSHandler(tlsfp)] if tlsfp else []
    opener = urllib.request.build_opener(*handlers)
    deadline = time.monotonic() + network_wait_s
    try:
        while True:
            try:
                with opener.open(url, timeout=FETCH_TIMEOUT_S) as response:
                    return bytes(response.read(MAX_KICKSTART_BYTES + 1))
            except urllib.error.URLError as err:
                if not network_not_ready(err) or time.monotonic() >= deadline:
                    raise
                left = deadline - time.monotonic()
                print(f"waiting for the network to reach {urlparse(url).netloc} ({left:.0f} s left): "
                      f"{getattr(err, 'reason', err)}", flush=True)
                time.sleep(min(NETWORK_RETRY_S, max(left, 0.0)))
    except urllib.error.HTTPError as err:
        raise ConfigError(f"fetching the kickstart {url} failed: HTTP {err.code} {err.reason}",
                          "check the URL") from err
    except (TimeoutError, urllib.error.URLError, ssl.SSLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ConfigError(f"fetching the kickstart {url} failed: {reason}",
                          "check the network and the URL; for a self-signed server pin it with ks.tlsfp=") from err
