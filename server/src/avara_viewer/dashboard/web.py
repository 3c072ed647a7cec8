"""Plumbing shared by the dashboard's pages: templates, the signed-in user, CSRF checks,
security headers, and the route class that turns refusals into HTML pages."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi.routing import APIRoute
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..accounts import service as accounts
from ..accounts import sessions
from ..accounts.sessions import Lookup, SessionInfo
from ..clock import utcnow
from ..context import AppContext, get_context
from ..email.render import format_expiry
from ..errors import ProblemError
from . import security

log = logging.getLogger("avara_viewer.dashboard")

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"

LEVEL_LABELS = {"owner": "Owner", "admin": "Administrator", "member": "Member"}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)


def _when(value: Any) -> str:
    if value is None:
        return "—"
    return value.strftime("%d %b %Y, %H:%M UTC")


def _full_name(row: Any) -> str:
    parts = [row["first_name"], row["middle_name"], row["last_name"]]
    name = " ".join(p for p in parts if p)
    suffixes = ", ".join(s for s in (row["suffix1"], row["suffix2"]) if s)
    return f"{name}, {suffixes}" if suffixes else name


env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["when"] = _when
env.filters["full_name"] = _full_name
env.filters["level_label"] = lambda level: LEVEL_LABELS.get(level, level)
env.filters["expiry"] = format_expiry


class Redirect(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class PageError(Exception):
    """Stop and show an error page with this status, title and explanation."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


@dataclass(frozen=True)
class Me:
    """The signed-in person (their users row with clinic_name) and the session they use."""

    row: Any
    session: SessionInfo

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def clinic_id(self) -> str:
        return str(self.row["clinic_id"])

    @property
    def is_admin(self) -> bool:
        return self.row["level"] in ("owner", "admin")

    @property
    def is_owner(self) -> bool:
        return bool(self.row["level"] == "owner")


def ctx_of(request: Request) -> AppContext:
    return get_context(request)


def _csrf_seed(request: Request) -> str:
    seed = getattr(request.state, "csrf_seed", None)
    if seed is None:
        seed = request.cookies.get(security.CSRF_COOKIE) or security.new_csrf_seed()
        request.state.csrf_seed = seed
    return str(seed)


def rotate_csrf(request: Request) -> None:
    """A new CSRF seed for the response (at login and logout)."""
    request.state.csrf_seed = security.new_csrf_seed()


async def current_session(request: Request) -> Lookup:
    """The session behind the request's cookie, its idle deadline moved forward (a write), or
    why it ended. Looked up once per request."""
    found: Lookup | None = getattr(request.state, "session_lookup", None)
    if found is not None:
        return found
    token = request.cookies.get(security.SESSION_COOKIE)
    found = Lookup(None, None)
    if token:
        ctx = ctx_of(request)
        found = await ctx.db.write(
            lambda conn: sessions.touch(
                conn,
                ctx.settings.resolved_secret_key,
                token,
                utcnow(),
                ctx.settings.session_idle_timeout,
            )
        )
    request.state.session_lookup = found
    return found


def _session_user_id(request: Request) -> str | None:
    """Whose session the request carries (a session waiting for MFA too), for CSRF tokens."""
    found: Lookup | None = getattr(request.state, "session_lookup", None)
    return found.session.user_id if found is not None and found.session is not None else None


async def current_user(request: Request) -> Me | None:
    """The person of a whole session (no sign-in step left), or None."""
    if hasattr(request.state, "me"):
        me: Me | None = request.state.me
        return me
    session = (await current_session(request)).session
    me = None
    if session is not None and session.pending is None:
        row = await ctx_of(request).db.read(
            lambda conn: accounts.session_user(conn, session.user_id, session.clinic_id)
        )
        me = Me(row, session) if row is not None else None
    request.state.me = me
    return me


async def require_user(request: Request) -> Me:
    me = await current_user(request)
    if me is None:
        found = await current_session(request)
        if found.session is not None and found.session.pending == "mfa":
            raise Redirect("/login/mfa")
        if found.session is not None and found.session.pending == "mfa_enrol":
            raise Redirect("/account/mfa/setup")
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        notice = f"&notice={found.ended}" if found.ended else ""
        raise Redirect(f"/login?next={quote(target, safe='')}{notice}")
    return me


async def require_admin(request: Request) -> Me:
    me = await require_user(request)
    if not me.is_admin:
        raise PageError(
            403,
            "You do not have access to this page",
            "Only your clinic's owners and administrators can open this page. If you need "
            "to change something here, ask one of them.",
        )
    return me


async def form_data(request: Request) -> FormData:
    return await request.form(max_files=1, max_fields=200)


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    token_page: bool = False,
    **context: Any,
) -> HTMLResponse:
    ctx = ctx_of(request)
    me: Me | None = getattr(request.state, "me", None)
    seed = _csrf_seed(request)
    idle_seconds = 0
    if me is not None:
        idle_seconds = int((me.session.idle_expires_at - me.session.last_seen_at).total_seconds())
    html = env.get_template(template).render(
        request_path=request.url.path,
        token_page=token_page,
        me=me,
        idle_seconds=idle_seconds,
        csrf_field=security.CSRF_FIELD,
        csrf_token=security.csrf_token(
            ctx.settings.resolved_secret_key, seed, _session_user_id(request)
        ),
        now=utcnow(),
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    if token_page:
        response.headers["Referrer-Policy"] = "no-referrer"
    set_csrf_cookie(request, response)
    return response


def cookie_secure(request: Request) -> bool:
    return ctx_of(request).settings.public_url.startswith("https://")


def set_csrf_cookie(request: Request, response: Response) -> None:
    seed = _csrf_seed(request)
    if request.cookies.get(security.CSRF_COOKIE) != seed:
        response.set_cookie(
            security.CSRF_COOKIE,
            seed,
            httponly=True,
            samesite="lax",
            secure=cookie_secure(request),
            path="/",
        )


def redirect(request: Request, url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    set_csrf_cookie(request, response)
    return response


def _csrf_ok(request: Request, form: FormData) -> bool:
    secret = ctx_of(request).settings.resolved_secret_key
    presented = form.get(security.CSRF_FIELD)
    return security.csrf_valid(
        secret,
        request.cookies.get(security.CSRF_COOKIE),
        _session_user_id(request),
        presented if isinstance(presented, str) else None,
    )


def _text_no_field_holds(form: FormData) -> str | None:
    """The name of a form field whose text holds a NUL (PostgreSQL refuses it), or None."""
    for name, value in form.multi_items():
        if "\x00" in name or (isinstance(value, str) and "\x00" in value):
            return name.replace("\x00", "")
    return None


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return page(
        request, "error.html", status=status, error_status=status, title=title, message=message
    )


class DashboardRoute(APIRoute):
    """Checks CSRF on every POST and renders redirects and refusals as pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                # No id of ours holds a NUL, and PostgreSQL refuses one in any text: a
                # /users/%00 is no such page (the query string's are refused in ops.middleware).
                if any("\x00" in str(v) for v in request.path_params.values()):
                    raise PageError(404, "Not found", "There is no such page.")
                await current_session(request)
                if request.method == "POST":
                    form = await form_data(request)
                    refused = _text_no_field_holds(form)
                    if refused:
                        raise PageError(
                            422,
                            "This form cannot be accepted",
                            f"The field “{refused}” contains a NUL character, which no field "
                            "can hold. Remove it and try again.",
                        )
                    if not _csrf_ok(request, form):
                        raise PageError(
                            403,
                            "This form has expired",
                            "For your security the form could not be accepted (its security "
                            "token is missing or out of date). Go back, reload the page and "
                            "try again.",
                        )
                return await handler(request)
            except Redirect as exc:
                return redirect(request, exc.url)
            except PageError as exc:
                return error_page(request, exc.status, exc.title, exc.message)
            except ProblemError as exc:
                return error_page(request, exc.status, exc.title, exc.detail)
            except Exception:
                log.exception("dashboard error on %s %s", request.method, request.url.path)
                return error_page(
                    request,
                    500,
                    "Something went wrong",
                    "The page could not be shown. The error has been logged; please try again.",
                )

        return run


class SecurityHeaders:
    """Security headers on every response outside the JSON API (pages, static files, errors)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in (
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ):
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
