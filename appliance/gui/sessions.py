"""GUI sessions kept on the server: the browser holds only a signed session id, never the API token.

A session holds the user's WS-API bearer token (from POST /api/v1/sessions), its role, a CSRF token
and one-shot notes (messages and form errors shown on the next page). Sessions live in memory: a
manager restart logs everybody out of the GUI (their API sessions simply expire).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

# __Host- cookies must be Secure, Path=/ and have no Domain: no other host or path can set them.
SESSION_COOKIE = "__Host-appliance-ui"
LOGIN_COOKIE = "__Host-appliance-ui-login"
LOGIN_MAX_AGE = 3600


@dataclass
class Notes:
    """What the next rendered page shows once: messages, errors next to what caused them, form input."""

    messages: list[tuple[str, str]] = field(default_factory=list)  # (kind, text); kind info|success|error
    errors: dict[str, str] = field(default_factory=dict)  # element key -> message
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # form key -> submitted values
    secrets: dict[str, str] = field(default_factory=dict)  # shown once (enrollment tokens)


@dataclass
class GuiSession:
    id: str
    token: str  # WS-API bearer token: server side only
    api_session_id: str
    user: str
    role: str
    csrf: str
    expires_at: float
    notes: Notes = field(default_factory=Notes)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    # The notes a page showed stay with that page's live regions for a while, so a refresh of a
    # region does not wipe an error shown next to one of its rows.
    shown: tuple[str, Notes, float] | None = None

    def take_notes(self, path: str) -> Notes:
        notes, self.notes = self.notes, Notes()
        self.shown = (path, notes, time.monotonic())
        return notes

    def region_notes(self, path: str, keep_seconds: float = 120.0) -> Notes | None:
        if self.shown and self.shown[0] == path and time.monotonic() - self.shown[2] < keep_seconds:
            return self.shown[1]
        return None

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf, presented or "")


class SessionStore:
    def __init__(self, secret: bytes | None = None, max_sessions: int = 10_000) -> None:
        self._signer = URLSafeTimedSerializer(secret or secrets.token_bytes(32), salt="appliance-gui")
        self._sessions: dict[str, GuiSession] = {}
        self._lock = threading.Lock()
        self.max_sessions = max_sessions

    def create(self, login: dict[str, Any], expires_at: float) -> GuiSession:
        session = GuiSession(
            id=secrets.token_urlsafe(32),
            token=str(login["token"]),
            api_session_id=str(login["id"]),
            user=str(login["user"]),
            role=str(login["role"]),
            csrf=secrets.token_urlsafe(32),
            expires_at=expires_at,
        )
        with self._lock:
            self._purge_locked()
            if len(self._sessions) >= self.max_sessions:
                oldest = min(self._sessions.values(), key=lambda s: s.expires_at)
                del self._sessions[oldest.id]
            self._sessions[session.id] = session
        return session

    def _purge_locked(self) -> None:
        now = time.time()
        for sid in [sid for sid, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[sid]

    def cookie_value(self, session: GuiSession) -> str:
        return self._signer.dumps(session.id)

    def lookup(self, cookie: str | None) -> GuiSession | None:
        if not cookie:
            return None
        try:
            sid = self._signer.loads(cookie)
        except BadSignature:
            return None
        with self._lock:
            session = self._sessions.get(str(sid))
            if session is not None and session.expires_at <= time.time():
                del self._sessions[session.id]
                return None
            return session

    def drop(self, session: GuiSession) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)

    def __len__(self) -> int:
        return len(self._sessions)

    # Login form CSRF: a signed nonce in a short-lived cookie that the form must repeat.
    def new_login_nonce(self) -> tuple[str, str]:
        nonce = secrets.token_urlsafe(24)
        return nonce, self._signer.dumps(nonce, salt="appliance-gui-login")

    def login_nonce_ok(self, cookie: str | None, presented: str | None) -> bool:
        if not cookie or not presented:
            return False
        try:
            nonce = self._signer.loads(cookie, salt="appliance-gui-login", max_age=LOGIN_MAX_AGE)
        except BadSignature:
            return False
        return hmac.compare_digest(str(nonce), presented)
