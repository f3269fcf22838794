"""Uvicorn protocol that hands the verified client certificate to the app.

It fills the ASGI TLS extension (``scope["extensions"]["tls"]["client_cert_der"]``) on every request of
a connection whose peer presented a certificate that the TLS layer verified against the manager CA.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _with_tls_extension(app: Any, der: bytes) -> Any:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "extensions": {**scope.get("extensions", {}), "tls": {"client_cert_der": der}}}
        await app(scope, receive, send)

    return wrapped


class ClientCertProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der:
            self.app = _with_tls_extension(self.app, der)
