"""Logging users in for the network front ends (SSH, legacy TCPS): through the WS-API, throttled, logged."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from appliance.shell.api import ApiError, WsApi, ca_context
from appliance.shell.ratelimit import FailedLogins

log = logging.getLogger("appliance.shell.login")


class LoginRefused(Exception):
    """Login failed; ``reason`` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Gate:
    api_url: str  # the WS-API over loopback
    ca_file: Path  # the manager CA
    state_root: Path  # STATE_DIR/cli: the SSH host key
    companion_cert: tuple[Path, Path] | None = None  # lets the SSH front end open sessions by key
    limiter: FailedLogins = field(default_factory=FailedLogins)

    def new_api(self) -> WsApi:
        return WsApi(self.api_url, ca_context(self.ca_file))

    def check_not_locked(self, front: str, user: str, peer: str) -> None:
        left = self.limiter.locked_for(peer)
        if left:
            log.warning("%s login as %r from %s refused: locked out for %.0f s more", front, user, peer, left)
            raise LoginRefused(f"too many failed logins from {peer}; try again in {int(left) + 1} s")

    def password_login(self, front: str, user: str, password: str, peer: str) -> WsApi:
        """A WS-API session for ``user``, or LoginRefused (a wrong password counts against ``peer``)."""
        self.check_not_locked(front, user, peer)
        api = self.new_api()
        try:
            api.login(user, password)
        except ApiError as err:
            api.close()
            if err.status in (400, 401):
                locked = self.limiter.failed(peer)
                log.warning(
                    "%s login failed: user %r from %s (wrong user name or password)%s",
                    front,
                    user,
                    peer,
                    "; address locked out" if locked else "",
                )
                raise LoginRefused("wrong user name or password") from None
            log.error("%s login as %r from %s: the WS-API failed: %s", front, user, peer, err)
            raise LoginRefused(f"the manager cannot check logins now: {err.message}") from None
        self.limiter.succeeded(peer)
        log.info("%s login: user %r from %s", front, user, peer)
        return api

    def key_login(self, user: str, public_key: str, peer: str) -> WsApi:
        """A WS-API session for ``user`` if ``public_key`` is one of their keys in the manager.

        asyncssh checks the client's signature with this key before the login completes; the
        manager checks that the key is the user's and that we are its SSH front end."""
        self.check_not_locked("SSH", user, peer)
        if self.companion_cert is None:
            raise LoginRefused("key logins are not available")
        tls = ca_context(self.ca_file)
        tls.load_cert_chain(*self.companion_cert)
        api = WsApi(self.api_url, tls)
        try:
            api.key_login(user, public_key)
        except ApiError as err:
            api.close()
            if err.status in (400, 401, 403):
                log.warning("SSH key login as %r from %s refused: %s", user, peer, err.message)
                raise LoginRefused("that key is not registered for this user") from None
            log.error("SSH key login as %r from %s: the WS-API failed: %s", user, peer, err)
            raise LoginRefused(f"the manager cannot check logins now: {err.message}") from None
        log.info("SSH key login: user %r from %s", user, peer)
        return api
