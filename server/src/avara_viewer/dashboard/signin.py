"""Signing in and out of the dashboard: the email-first login page (an address in a domain of
a clinic with single sign-on goes to that clinic's provider; others give a password), the
provider's callback, the second step MFA adds after a password, and the server-side session
behind the cookie."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from .. import events, flows
from ..accounts import mfa, policy, sessions, sso
from ..accounts import service as accounts
from ..accounts.oidc import OidcError
from ..actor import Actor
from ..clinics import service as clinics
from ..clock import utcnow
from ..config import Settings
from ..ids import constant_time_equal
from . import security
from .web import (
    DashboardRoute,
    cookie_secure,
    ctx_of,
    current_session,
    current_user,
    error_page,
    field,
    form_data,
    page,
    redirect,
    require_user,
    rotate_csrf,
)

log = logging.getLogger("avara_viewer.dashboard")
router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

CALLBACK_PATH = "/auth/oidc/callback"
# The `state` of a sign-in sent to the provider, so the callback proves it comes back to the
# browser that started it (login CSRF and code injection).
STATE_COOKIE = "avv_oidc_state"
GENERIC_REFUSAL = "The email or password is not correct, or this account cannot use the dashboard."


def safe_next(target: str) -> str:
    """Only a path on this site: never another origin (no open redirect)."""
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc:
        return "/users"
    return target


def client_ip(request: Request) -> str:
    """The peer address (uvicorn has already replaced it by X-Forwarded-For's client when,
    and only when, the peer is a proxy named in AVARA_VIEWER_TRUSTED_PROXIES)."""
    return request.client.host if request.client else "unknown"


def actor_for(request: Request, clinic_id: str, user_id: str) -> Actor:
    return Actor(
        clinic_id=clinic_id,
        kind="user",
        id=user_id,
        request_id=getattr(request.state, "request_id", None),
    )


async def begin_session(
    request: Request,
    *,
    user_id: str,
    clinic_id: str,
    method: str,
    pending: str | None,
    detail: dict[str, Any] | None = None,
) -> str:
    """Start a session (ending the request's current one, if any); returns its token. A whole
    session (nothing pending) records the sign-in."""
    ctx = ctx_of(request)
    secret = ctx.settings.resolved_secret_key
    old_token = request.cookies.get(security.SESSION_COOKIE, "")
    ip = client_ip(request)
    agent = request.headers.get("user-agent", "")

    async def work(conn: AsyncConnection) -> str:
        now = utcnow()
        await sessions.end(conn, secret, old_token)
        clinic_policy = await policy.of_clinic(conn, clinic_id)
        token, info = await sessions.start(
            conn,
            secret,
            user_id=user_id,
            clinic_id=clinic_id,
            method=method,
            pending=pending,
            now=now,
            idle_timeout=clinic_policy.idle_timeout_or(ctx.settings.session_idle_timeout),
            max_age=ctx.settings.session_max_age,
            user_agent=agent,
            ip=ip,
        )
        if pending is None:
            await accounts.record_login(conn, user_id, now)
            await events.emit(
                conn,
                events.DomainEvent(
                    events.SIGNED_IN,
                    actor_for(request, clinic_id, user_id),
                    "user",
                    user_id,
                    {"method": method, "ip": ip, "session": info.public_id, **(detail or {})},
                    now,
                ),
            )
        return token

    token = await ctx.db.write(work)
    rotate_csrf(request)
    return token


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        security.SESSION_COOKIE,
        token,
        max_age=int(ctx_of(request).settings.session_max_age.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
        path="/",
    )


async def start_session(
    request: Request,
    *,
    user_id: str,
    clinic_id: str,
    method: str,
    pending: str | None,
    target: str,
    detail: dict[str, Any] | None = None,
) -> Response:
    """begin_session, then go to `target` with the new cookie."""
    token = await begin_session(
        request,
        user_id=user_id,
        clinic_id=clinic_id,
        method=method,
        pending=pending,
        detail=detail,
    )
    response = redirect(request, target)
    set_session_cookie(request, response, token)
    return response


async def after_password(
    conn: AsyncConnection, settings: Settings, *, user_id: str, clinic_id: str, level: str
) -> tuple[bool, str | None]:
    """Once a person's password is proven (at login, or just set by accepting an invitation):
    whether the clinic's required single sign-on blocks it (owners keep their password as the
    break-glass way in), and which second step is pending (None, "mfa", "mfa_enrol")."""
    sso_required = await sso.required_for(conn, clinic_id)
    if sso_required and level != "owner":
        return True, None
    if await mfa.is_enrolled(conn, user_id):
        return False, "mfa"
    # An owner's password under required single sign-on always takes a second factor.
    if sso_required:
        return False, "mfa_enrol"
    clinic_policy = await policy.of_clinic(conn, clinic_id)
    if settings.mfa_enforced and clinic_policy.mfa_required(level):
        return False, "mfa_enrol"
    return False, None


def landing(pending: str | None, target: str) -> str:
    """Where a new session goes first: its pending second step, else the target."""
    return {
        None: target,
        "mfa": f"/login/mfa?next={quote(target, safe='')}",
        "mfa_enrol": f"/account/mfa/setup?next={quote(target, safe='')}",
    }[pending]


# --- the login page -----------------------------------------------------------------------


@router.get("/")
async def home(request: Request) -> Response:
    me = await current_user(request)
    return redirect(request, "/users" if me else "/login")


@router.get("/login")
async def login_page(request: Request) -> Response:
    if await current_user(request):
        return redirect(request, "/users")
    return _login_form(
        request, 200, "", safe_next(request.query_params.get("next", "/users")), None
    )


def _login_form(
    request: Request, status: int, email: str, target: str, error: str | None
) -> Response:
    return page(
        request,
        "login.html",
        status=status,
        email=email,
        next=target,
        error=error,
        notice=request.query_params.get("notice", "") if error is None else "",
    )


def _locked(request: Request, email: str, target: str, until: datetime | None) -> Response:
    now = utcnow()
    seconds = max(60, int((until - now).total_seconds()) + 1) if until else 15 * 60
    minutes = max(1, seconds // 60)
    response = _login_form(
        request,
        429,
        email,
        target,
        "Too many failed attempts. For your security, logging in with this email is paused "
        f"for about {minutes} minute{'s' if minutes != 1 else ''}. You can also reset your "
        "password.",
    )
    response.headers["Retry-After"] = str(seconds)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    ctx = ctx_of(request)
    secret = ctx.settings.resolved_secret_key
    form = await form_data(request)
    email = field(form, "email")[:320]
    password = form.get("password")
    password = password if isinstance(password, str) else ""
    target = safe_next(field(form, "next") or "/users")
    wants_sso = field(form, "method") == "sso"
    if not email or "@" not in email:
        return _login_form(request, 422, email, target, "Enter your email address.")

    sso_clinic = await ctx.db.read(lambda conn: sso.clinic_for_email(conn, email))
    if sso_clinic is not None and (wants_sso or not password):
        return await _to_provider(request, sso_clinic, email, target)
    if wants_sso:
        return _login_form(
            request,
            422,
            email,
            target,
            "Addresses of this domain do not sign in with single sign-on here: enter your "
            "password.",
        )

    # Counted as a failure before the password is checked: concurrent guesses each take
    # one of the attempts left, and none is checked once they are gone.
    keys = accounts.login_throttle_keys(secret, email, client_ip(request))
    attempt = await ctx.db.write(lambda conn: accounts.count_attempt(conn, keys, utcnow()))
    if not attempt.allowed:
        return _locked(request, email, target, attempt.locked_until)
    candidates = await ctx.db.read(lambda conn: accounts.login_candidates(conn, email))
    user = None
    if not candidates:
        await security.verify_password(None, password)
    for candidate in candidates:
        if await security.verify_password(candidate.password_hash, password):
            user = candidate
            break
    if user is None:
        if attempt.locked_until is not None:
            return _locked(request, email, target, attempt.locked_until)
        return _login_form(request, 401, email, target, GENERIC_REFUSAL)

    async def next_step(conn: AsyncConnection) -> tuple[bool, str | None]:
        blocked, pending = await after_password(
            conn, ctx.settings, user_id=user.id, clinic_id=user.clinic_id, level=user.level
        )
        if not blocked:
            await accounts.attempt_succeeded(conn, attempt)
        return blocked, pending

    blocked, pending = await ctx.db.write(next_step)
    if blocked:
        return _login_form(
            request,
            403,
            email,
            target,
            "Your clinic signs in with single sign-on: use “Continue with single sign-on” "
            "with your organisation's email address.",
        )
    return await start_session(
        request,
        user_id=user.id,
        clinic_id=user.clinic_id,
        method="password",
        pending=pending,
        target=landing(pending, target),
    )


@router.post("/logout")
async def logout(request: Request) -> Response:
    ctx = ctx_of(request)
    token = request.cookies.get(security.SESSION_COOKIE, "")

    async def work(conn: AsyncConnection) -> None:
        ended = await sessions.end(conn, ctx.settings.resolved_secret_key, token)
        if ended is not None:
            await events.emit(
                conn,
                events.DomainEvent(
                    events.SIGNED_OUT,
                    actor_for(request, ended.clinic_id, ended.user_id),
                    "user",
                    ended.user_id,
                    {"session": ended.public_id},
                    utcnow(),
                ),
            )

    await ctx.db.write(work)
    rotate_csrf(request)
    response = redirect(request, "/login?notice=logged-out")
    response.delete_cookie(security.SESSION_COOKIE, path="/")
    return response


@router.post("/session/keepalive")
async def keepalive(request: Request) -> Response:
    """“Stay signed in” on the inactivity warning: the session was touched on the way in."""
    await require_user(request)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


# --- the second factor --------------------------------------------------------------------


@router.get("/login/mfa")
async def mfa_page(request: Request) -> Response:
    session = (await current_session(request)).session
    if session is None or session.pending != "mfa":
        return redirect(request, "/login")
    target = safe_next(request.query_params.get("next", "/users"))
    return page(request, "mfa_challenge.html", error=None, next=target)


@router.post("/login/mfa")
async def mfa_check(request: Request) -> Response:
    ctx = ctx_of(request)
    secret = ctx.settings.resolved_secret_key
    session = (await current_session(request)).session
    if session is None or session.pending != "mfa":
        return redirect(request, "/login")
    form = await form_data(request)
    code = field(form, "code")[:40]
    target = safe_next(field(form, "next") or "/users")
    keys = accounts.mfa_throttle_keys(secret, session.user_id)
    attempt = await ctx.db.write(lambda conn: accounts.count_attempt(conn, keys, utcnow()))
    if not attempt.allowed:
        response = page(
            request,
            "mfa_challenge.html",
            status=429,
            next=target,
            error="Too many wrong codes. Wait 15 minutes, or ask an owner of your clinic to "
            "reset your two-step verification.",
        )
        response.headers["Retry-After"] = "900"
        return response

    async def check(conn: AsyncConnection) -> str | None:
        now = utcnow()
        if await mfa.verify_code(conn, secret, session.user_id, code, now):
            await accounts.attempt_succeeded(conn, attempt)
            return "totp"
        if await mfa.use_recovery_code(conn, secret, session.user_id, code, now):
            await accounts.attempt_succeeded(conn, attempt)
            left = await mfa.recovery_codes_left(conn, session.user_id)
            await events.emit(
                conn,
                events.DomainEvent(
                    events.MFA_RECOVERY_CODE_USED,
                    actor_for(request, session.clinic_id, session.user_id),
                    "user",
                    session.user_id,
                    {"recoveryCodesLeft": left},
                    now,
                ),
            )
            return "recovery_code"
        return None

    factor = await ctx.db.write(check)
    if factor is None:
        return page(
            request,
            "mfa_challenge.html",
            status=401,
            next=target,
            error="That code is not right, or it was already used. Enter the code the app "
            "shows now.",
        )
    return await start_session(
        request,
        user_id=session.user_id,
        clinic_id=session.clinic_id,
        method=session.method,
        pending=None,
        target=target,
        detail={"secondFactor": factor},
    )


# --- single sign-on -----------------------------------------------------------------------


def redirect_uri(request: Request) -> str:
    return ctx_of(request).settings.public_url + CALLBACK_PATH


async def _to_provider(request: Request, clinic_id: str, email: str, target: str) -> Response:
    """Send the browser to the clinic's provider, remembering state, nonce and verifier."""
    ctx = ctx_of(request)
    secret = ctx.settings.resolved_secret_key
    connection = await ctx.db.read(lambda conn: sso.settings_of(conn, secret, clinic_id))
    if connection is None:
        return _login_form(request, 404, email, target, GENERIC_REFUSAL)
    try:
        metadata = await ctx.relying_party.discover(connection.issuer)
    except OidcError as exc:
        log.warning("single sign-on: discovery failed for clinic %s: %s", clinic_id, exc.message)
        return error_page(
            request,
            502,
            "Your organisation's sign-in cannot be reached",
            "The single sign-on service of your clinic did not answer. Try again in a few "
            "minutes; if it keeps failing, tell your clinic's administrator.",
        )
    auth = ctx.relying_party.authorization_request(
        metadata,
        client_id=connection.client_id,
        redirect_uri=redirect_uri(request),
        login_hint=email,
    )
    await ctx.db.write(
        lambda conn: sso.remember_login(
            conn, secret, clinic_id, auth, email_hint=email, next_path=target, now=utcnow()
        )
    )
    # A page that moves on by itself rather than a redirect: the login form's CSP allows
    # form submissions to this site only (form-action 'self'), redirects included.
    clinic_name = await ctx.db.read(lambda conn: clinics.clinic_name(conn, clinic_id))
    response = page(request, "to_provider.html", url=auth.url, clinic_name=clinic_name)
    response.set_cookie(
        STATE_COOKIE,
        auth.state,
        max_age=int(sso.LOGIN_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
        path=CALLBACK_PATH,
    )
    return response


# The refusals after a valid answer from the provider, in the person's words.
REFUSALS = {
    "unknown": (
        "Your clinic does not know this address",
        "Your organisation signed you in as {email}, but the clinic has no account for this "
        "address. Ask your clinic's administrator to invite you.",
    ),
    "revoked": (
        "Your access was revoked",
        "The account for {email} can no longer sign in. Ask your clinic's administrator.",
    ),
    "no_dashboard_access": (
        "This account does not use the dashboard",
        "You are signed up as {email}, but your account has no dashboard access. Ask your "
        "clinic's administrator if you need it.",
    ),
    "subject_mismatch": (
        "This account belongs to another sign-in",
        "The account for {email} is linked to a different identity at your organisation. "
        "Ask your clinic's administrator.",
    ),
    "invitation_closed": (
        "Your invitation can no longer be accepted",
        "The invitation for {email} has expired or was withdrawn. Ask your clinic's "
        "administrator to send a new one.",
    ),
}


@router.get(CALLBACK_PATH)
async def oidc_callback(request: Request) -> Response:
    ctx = ctx_of(request)
    secret = ctx.settings.resolved_secret_key
    params = request.query_params

    def refuse(status: int, title: str, message: str) -> Response:
        response = error_page(request, status, title, message)
        response.delete_cookie(STATE_COOKIE, path=CALLBACK_PATH)
        return response

    state = params.get("state", "")[:200]
    expected = request.cookies.get(STATE_COOKIE, "")
    if not state or not expected or not constant_time_equal(state, expected):
        # The browser's own sign-in in progress (its cookie) stays usable.
        return error_page(
            request,
            400,
            "This sign-in could not be verified",
            "The answer from your organisation's sign-in does not belong to a sign-in started "
            "in this browser. Start again from the login page.",
        )
    pending = await ctx.db.write(lambda conn: sso.take_login(conn, secret, state, utcnow()))
    if pending is None:
        return refuse(
            400,
            "This sign-in was already used or has expired",
            "Each sign-in can complete once, within 10 minutes. Start again from the login page.",
        )
    if params.get("error") or not params.get("code"):
        reason = params.get("error_description") or params.get("error") or "no code"
        return refuse(
            401,
            "Sign-in was not completed",
            f"Your organisation's sign-in answered: {reason[:200]}. Start again from the login "
            "page.",
        )
    connection = await ctx.db.read(lambda conn: sso.settings_of(conn, secret, pending.clinic_id))
    if connection is None:
        return refuse(400, "Single sign-on is not set up", "Your clinic turned single sign-on off.")
    try:
        metadata = await ctx.relying_party.discover(connection.issuer)
        tokens = await ctx.relying_party.exchange_code(
            metadata,
            client_id=connection.client_id,
            client_secret=connection.client_secret,
            redirect_uri=redirect_uri(request),
            code=params["code"][:2000],
            code_verifier=pending.code_verifier,
        )
        identity = await ctx.relying_party.identity(
            metadata, tokens, client_id=connection.client_id, nonce=pending.nonce
        )
    except OidcError as exc:
        log.warning(
            "single sign-on refused for clinic %s: %s (%s)",
            pending.clinic_id,
            exc.reason,
            exc.message,
        )
        return refuse(
            401,
            "Single sign-on failed",
            f"{exc.message} Start again from the login page; if it keeps failing, tell your "
            "clinic's administrator.",
        )
    if identity.email is None or not identity.email_verified:
        return refuse(
            403,
            "Your email address was not confirmed",
            "Your organisation did not confirm the email address of this account, so it "
            "cannot be matched to a person of the clinic.",
        )
    domain = identity.email.rpartition("@")[2].lower()
    if domain not in connection.domains:
        return refuse(
            403,
            "This address cannot sign in here",
            f"Your organisation signed you in as {identity.email}, but this clinic accepts "
            f"single sign-on only for addresses at {', '.join(connection.domains)}.",
        )
    outcome = await ctx.db.write(
        lambda conn: flows.sign_in_with_provider(
            conn, ctx.settings, connection, identity, now=utcnow()
        )
    )
    if outcome.refusal is not None or outcome.user_id is None:
        title, message = REFUSALS[outcome.refusal or "unknown"]
        return refuse(403, title, message.format(email=identity.email))
    response = await start_session(
        request,
        user_id=outcome.user_id,
        clinic_id=connection.clinic_id,
        method="sso",
        pending=None,
        target=safe_next(pending.next_path),
        detail={"invitationAccepted": True} if outcome.accepted else None,
    )
    response.delete_cookie(STATE_COOKIE, path=CALLBACK_PATH)
    return response
