"""Logging in and out: the GUI exchanges the user's password for a WS-API session and keeps its
token on the server; the browser gets a signed, HttpOnly, Secure, SameSite=Strict session cookie."""

from __future__ import annotations

import datetime as dt
import time

from starlette.requests import Request
from starlette.responses import Response

from appliance.gui.apiclient import ApiError
from appliance.gui.sessions import LOGIN_COOKIE, LOGIN_MAX_AGE, SESSION_COOKIE
from appliance.gui.web import (
    current_session,
    gui_of,
    redirect,
    render,
    safe_next,
    same_origin,
    secure,
)

COOKIE_FLAGS = {"path": "/", "secure": True, "httponly": True, "samesite": "strict"}


def _expiry(text: str | None) -> float:
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time() + 3600


def _login_page(
    request: Request, status: int = 200, error: str | None = None, username: str = "", nxt: str | None = None
) -> Response:
    gui = gui_of(request)
    nonce, cookie = gui.store.new_login_nonce()
    response = render(
        request,
        None,
        "login.html",
        status=status,
        nonce=nonce,
        error=error,
        why=request.query_params.get("why"),
        username=username,
        next=safe_next(nxt or request.query_params.get("next"), gui.url("/"), gui.config.mount_path),
        notes=None,
    )
    response.set_cookie(LOGIN_COOKIE, cookie, max_age=LOGIN_MAX_AGE, **COOKIE_FLAGS)  # type: ignore[arg-type]
    return response


async def login_form(request: Request) -> Response:
    if current_session(request) is not None:
        return redirect(gui_of(request).url("/"))
    return _login_page(request)


async def login(request: Request) -> Response:
    gui = gui_of(request)
    form = await request.form()
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    nxt = str(form.get("next") or "")
    if not same_origin(request) or not gui.store.login_nonce_ok(
        request.cookies.get(LOGIN_COOKIE), str(form.get("csrf_token") or "")
    ):
        return _login_page(
            request,
            403,
            "The login form had expired or came from another site. Please try again.",
            username,
            nxt,
        )
    if not username or not password:
        return _login_page(request, 400, "Enter your user name and password.", username, nxt)
    try:
        answer = await gui.api.login(username, password)
    except ApiError as err:
        status = err.status if err.status < 500 else 502
        return _login_page(request, status, err.message, username, nxt)
    session = gui.store.create(answer, _expiry(answer.get("expires_at")))
    target = safe_next(nxt, gui.url("/"), gui.config.mount_path)
    response = redirect(target)
    max_age = max(60, int(session.expires_at - time.time()))
    response.set_cookie(SESSION_COOKIE, gui.store.cookie_value(session), max_age=max_age, **COOKIE_FLAGS)  # type: ignore[arg-type]
    response.delete_cookie(LOGIN_COOKIE, **COOKIE_FLAGS)  # type: ignore[arg-type]
    return response


async def logout(request: Request) -> Response:
    gui = gui_of(request)
    session = current_session(request)
    if session is not None:
        form = await request.form()
        token = form.get("csrf_token")
        if not same_origin(request) or not session.csrf_ok(token if isinstance(token, str) else None):
            return secure(Response("CSRF check failed: reload the page and log out again.", status_code=403))
        # Forget the session first, so a live update racing the logout is not told "your session ended".
        gui.store.drop(session)
        try:
            await gui.api.call("DELETE", f"/sessions/{session.api_session_id}", session.token)
        except ApiError:
            pass  # the GUI has forgotten the token either way; the API session then just expires
    response = redirect(gui.url("/login?why=" + "You+have+logged+out."))
    response.delete_cookie(SESSION_COOKIE, **COOKIE_FLAGS)  # type: ignore[arg-type]
    return response
