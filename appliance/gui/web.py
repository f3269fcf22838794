"""Request plumbing shared by the GUI's pages: sessions, CSRF, rendering, redirects, security headers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from appliance import __version__
from appliance.gui.apiclient import ApiError, Job, WsApi
from appliance.gui.config import GuiConfig
from appliance.gui.sessions import SESSION_COOKIE, GuiSession, SessionStore

TEMPLATES = Path(__file__).with_name("templates")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _when(value: str | None) -> str:
    """ISO time from the API as 'YYYY-MM-DD HH:MM:SS' (UTC)."""
    if not value:
        return ""
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def _short(value: Any, n: int = 8) -> str:
    text = str(value or "")
    return text[:n] if len(text) > n else text


def _size(value: Any) -> str:
    from appliance.gui.charts import format_bytes

    return format_bytes(float(value or 0))


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(("html",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, short=_short, size=_size, tojson_pretty=lambda v: json.dumps(v, indent=1))
    env.globals["version"] = __version__
    return env


@dataclass
class Gui:
    """Everything the GUI's handlers share."""

    config: GuiConfig
    api: WsApi
    store: SessionStore
    env: jinja2.Environment = field(default_factory=make_environment)

    def url(self, path: str = "/") -> str:
        return self.config.mount_path + path


def gui_of(request: Request) -> Gui:
    gui: Gui = request.app.state.gui
    return gui


def secure(response: Response) -> Response:
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    return response


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    session: GuiSession | None,
    template: str,
    status: int = 200,
    **context: Any,
) -> Response:
    """A whole page, or with ?part=NAME from htmx just that block (a live region) of it."""
    gui = gui_of(request)
    tmpl = gui.env.get_template(template)
    part = request.query_params.get("part")
    values = {
        "nav": None,
        "session": session,
        "ui": gui.config.mount_path,
        "path": request.url.path,
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        **context,
    }
    # A live-region refresh must not swallow the one-shot notes meant for the next full page.
    if "notes" not in values:
        if session is None:
            values["notes"] = None
        elif part:
            values["notes"] = session.region_notes(request.url.path)
        else:
            values["notes"] = session.take_notes(request.url.path)
    # Macros see the same context (session, notes, ui), also when a block renders alone.
    values["m"] = gui.env.get_template("macros.html").make_module(values)
    if part and is_htmx(request) and f"region_{part}" in tmpl.blocks:
        html = "".join(tmpl.blocks[f"region_{part}"](tmpl.new_context(values)))
    else:
        html = tmpl.render(values)
    return secure(HTMLResponse(html, status_code=status))


def redirect(url: str, request: Request | None = None) -> Response:
    if request is not None and is_htmx(request):
        return secure(Response(status_code=204, headers={"HX-Redirect": url}))
    return secure(RedirectResponse(url, status_code=303))


def safe_next(value: str | None, default: str, mount: str) -> str:
    """Only local GUI paths: never another host (open redirects)."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith(mount + "/") or "\\" in value:
        return default
    return value


def login_redirect(request: Request, message: str | None = None) -> Response:
    gui = gui_of(request)
    target = gui.url("/login")
    params = []
    if request.method == "GET" and not is_htmx(request):
        params.append(
            "next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        )
    if message:
        params.append("why=" + quote(message))
    response = redirect(target + ("?" + "&".join(params) if params else ""), request)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


def current_session(request: Request) -> GuiSession | None:
    return gui_of(request).store.lookup(request.cookies.get(SESSION_COOKIE))


def session_ended(request: Request, session: GuiSession, err: ApiError) -> Response:
    gui_of(request).store.drop(session)
    return login_redirect(request, f"Your session has ended ({err.message}). Please log in again.")


PageHandler = Callable[[Request, GuiSession], Awaitable[Response]]


def page(handler: PageHandler) -> Callable[[Request], Awaitable[Response]]:
    """A GET view for logged-in users; WS-API errors are shown on the page, not as a crash."""

    async def endpoint(request: Request) -> Response:
        session = current_session(request)
        if session is None:
            return login_redirect(request)
        try:
            return await handler(request, session)
        except ApiError as err:
            if err.status == 401:
                return session_ended(request, session, err)
            return render(
                request, session, "error.html", status=err.status if err.status < 500 else 502, error=err
            )

    endpoint.__name__ = handler.__name__
    return endpoint


@dataclass
class Action:
    """One form submission: who sent it, what, and where its outcome is shown."""

    request: Request
    session: GuiSession
    form: FormData
    gui: Gui
    key: str = "page"  # the element next to which an error is shown
    form_name: str | None = None  # keep this form's input if the call fails

    def field(self, name: str) -> str:
        value = self.form.get(name)
        return value.strip() if isinstance(value, str) else ""

    @property
    def token(self) -> str:
        return self.session.token

    def say(self, text: str, kind: str = "success") -> None:
        self.session.notes.messages.append((kind, text))

    async def job(
        self, method: str, path: str, *, json: Any = None, wait: float | None = None, done: str | None = None
    ) -> Job:
        """Start a change; report it done, failed (next to its element) or still running."""
        wait = self.gui.config.action_wait_seconds if wait is None else wait
        job = await self.gui.api.job(method, path, self.token, json=json, wait=wait)
        if job.state == "succeeded":
            self.say(done or f"Done: {job.summary}.")
        elif job.finished:
            self.fail(f"{job.summary}: {job.error_message} (job {job.id})")
        else:
            self.say(
                f"Job {job.id} is {job.state}: {job.summary}. Its progress shows on the Jobs page.", "info"
            )
        return job

    def fail(self, message: str) -> None:
        self.session.notes.errors[self.key] = message
        if self.form_name:  # passwords are never echoed back into a page
            self.session.notes.values[self.form_name] = {
                k: v
                for k, v in self.form.items()
                if isinstance(v, str) and k not in ("csrf_token", "next") and "password" not in k
            }


ActionHandler = Callable[[Action], Awaitable[None]]


def csrf_refused(request: Request, session: GuiSession | None) -> Response:
    return render(
        request,
        session,
        "error.html",
        status=403,
        error=ApiError(
            403,
            "csrf",
            "This form could not be verified (its security token is missing or stale, or it came from "
            "another site), so nothing was changed. Reload the page and try again.",
        ),
    )


def same_origin(request: Request) -> bool:
    """Browsers send Origin on POST; when they do it must be this very site."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin == f"{request.url.scheme}://{host}"


def action(handler: ActionHandler, default_next: str = "/") -> Callable[[Request], Awaitable[Response]]:
    """A POSTed form from a logged-in user: CSRF-checked, then redirected back (POST/redirect/GET)."""

    async def endpoint(request: Request) -> Response:
        gui = gui_of(request)
        session = current_session(request)
        if session is None:
            return login_redirect(
                request, "Please log in again: your session had ended, nothing was changed."
            )
        form = await request.form()
        presented = form.get("csrf_token")
        token = presented if isinstance(presented, str) else request.headers.get("x-csrf-token")
        if not same_origin(request) or not session.csrf_ok(token):
            return csrf_refused(request, session)
        nxt = form.get("next")
        back = safe_next(nxt if isinstance(nxt, str) else None, gui.url(default_next), gui.config.mount_path)
        act = Action(request, session, form, gui)
        try:
            await handler(act)
        except ApiError as err:
            if err.status == 401:
                return session_ended(request, session, err)
            if err.status == 403:  # not allowed at all: say so at the top, where any role sees it
                act.key = "page"
            act.fail(err.message)
        return redirect(back, request)

    endpoint.__name__ = handler.__name__
    return endpoint
