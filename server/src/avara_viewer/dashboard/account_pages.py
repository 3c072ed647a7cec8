"""A person's own sign-in, behind a session: their account page (where they are signed in,
"sign out everywhere else"), changing their password, setting up two-step verification and
replacing their recovery codes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from .. import events
from ..accounts import mfa, sessions, sso
from ..accounts import service as accounts
from ..accounts.sessions import SessionInfo
from ..clock import utcnow
from . import security
from .signin import actor_for, begin_session, client_ip, safe_next, set_session_cookie
from .web import (
    DashboardRoute,
    Redirect,
    ctx_of,
    current_session,
    field,
    form_data,
    page,
    redirect,
    require_user,
)

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

NOTICES = {
    "others-ended": "Your other sessions have ended.",
    "password-changed": "Your password was changed; your other sessions have ended.",
    "mfa-on": "Two-step verification is on.",
}


@router.get("/profile")
async def profile(request: Request) -> Response:
    me = await require_user(request)

    async def facts(conn: AsyncConnection) -> dict[str, Any]:
        now = utcnow()
        enrolled = await mfa.is_enrolled(conn, me.id)
        linked = await sso.linked_subject(conn, me.id)
        return {
            "sessions": await sessions.of_user(conn, me.id, now),
            "mfa_enrolled": enrolled,
            "recovery_left": await mfa.recovery_codes_left(conn, me.id) if enrolled else 0,
            "sso_issuer": linked[0] if linked else None,
        }

    return page(
        request,
        "profile.html",
        current_session=me.session.public_id,
        has_password=me.row["password_hash"] is not None,
        notice=NOTICES.get(request.query_params.get("notice", "")),
        **await ctx_of(request).db.read(facts),
    )


@router.post("/account/sessions/end-others")
async def end_other_sessions(request: Request) -> Response:
    me = await require_user(request)

    async def work(conn: AsyncConnection) -> None:
        ended = await accounts.end_sessions(conn, me.id, keep_public_id=me.session.public_id)
        if ended:
            await events.emit(
                conn,
                events.DomainEvent(
                    events.SESSIONS_ENDED,
                    actor_for(request, me.clinic_id, me.id),
                    "user",
                    me.id,
                    {"sessionsEnded": ended, "kept": me.session.public_id},
                    utcnow(),
                ),
            )

    await ctx_of(request).db.write(work)
    return redirect(request, "/profile?notice=others-ended")


# --- password -----------------------------------------------------------------------------

_PASSWORD_LABELS = ("current_password", "password", "password_confirmation")


@router.get("/account/password")
async def password_page(request: Request) -> Response:
    await require_user(request)
    return page(request, "password_change.html", errors={})


@router.post("/account/password")
async def change_password(request: Request) -> Response:
    me = await require_user(request)
    ctx = ctx_of(request)
    secret = ctx.settings.resolved_secret_key
    form = await form_data(request)
    values = {name: form.get(name) for name in _PASSWORD_LABELS}
    current, new, confirmation = (v if isinstance(v, str) else "" for v in values.values())

    def again(status: int, errors: dict[str, str]) -> Response:
        return page(request, "password_change.html", status=status, errors=errors)

    # The current password is guessed like a login's: counted before it is checked.
    keys = accounts.login_throttle_keys(secret, me.row["email"], client_ip(request))
    attempt = await ctx.db.write(lambda conn: accounts.count_attempt(conn, keys, utcnow()))
    if not attempt.allowed:
        return again(429, {"current_password": "Too many wrong passwords; try again later."})
    stored = await ctx.db.read(lambda conn: accounts.password_hash_of(conn, me.id))
    if stored is None or not await security.verify_password(stored, current):
        return again(401, {"current_password": "This is not your current password."})
    await ctx.db.write(lambda conn: accounts.attempt_succeeded(conn, attempt))
    errors = security.password_problems(
        new,
        confirmation,
        email=me.row["email"],
        first_name=me.row["first_name"],
        last_name=me.row["last_name"],
    )
    if new and new == current and "password" not in errors:
        errors["password"] = "Choose a password other than your current one."
    if errors:
        return again(422, errors)
    password_hash = await security.hash_password(new)

    async def work(conn: AsyncConnection) -> None:
        now = utcnow()
        ended = await accounts.change_password(
            conn, me.id, password_hash, me.session.public_id, now
        )
        await events.emit(
            conn,
            events.DomainEvent(
                events.PASSWORD_CHANGED,
                actor_for(request, me.clinic_id, me.id),
                "user",
                me.id,
                {"sessionsEnded": ended},
                now,
            ),
        )

    await ctx.db.write(work)
    return redirect(request, "/profile?notice=password-changed")


# --- two-step verification ----------------------------------------------------------------


async def _enrolling(request: Request) -> tuple[SessionInfo, Any]:
    """The session and person setting up MFA: a whole session, or one that must enrol first."""
    session = (await current_session(request)).session
    if session is None or session.pending not in (None, "mfa_enrol"):
        await require_user(request)  # redirects to the login page or the pending step
        raise Redirect("/login")
    row = await ctx_of(request).db.read(
        lambda conn: accounts.session_user(conn, session.user_id, session.clinic_id)
    )
    if row is None:
        raise Redirect("/login")
    if session.pending is None:
        await require_user(request)  # the page shows the signed-in layout
    return session, row


@router.get("/account/mfa/setup")
async def mfa_setup_page(request: Request) -> Response:
    session, row = await _enrolling(request)
    ctx = ctx_of(request)
    secret = ctx.settings.resolved_secret_key
    try:
        key = await ctx.db.write(
            lambda conn: mfa.begin_enrolment(conn, secret, session.user_id, utcnow())
        )
    except mfa.AlreadyEnrolled:
        return redirect(request, "/profile?notice=mfa-on")
    return _setup_page(request, session, row, key, None, 200)


def _setup_page(
    request: Request, session: SessionInfo, row: Any, key: str, error: str | None, status: int
) -> Response:
    return page(
        request,
        "mfa_setup.html",
        status=status,
        enrolment=mfa.enrolment(key, f"{row['email']} ({row['clinic_name']})"),
        required=session.pending == "mfa_enrol",
        error=error,
        next=safe_next(request.query_params.get("next", "/users")),
    )


@router.post("/account/mfa/setup")
async def mfa_setup(request: Request) -> Response:
    session, row = await _enrolling(request)
    ctx = ctx_of(request)
    secret = ctx.settings.resolved_secret_key
    form = await form_data(request)
    code = field(form, "code")[:40]
    keys = accounts.mfa_throttle_keys(secret, session.user_id)
    attempt = await ctx.db.write(lambda conn: accounts.count_attempt(conn, keys, utcnow()))

    async def confirm(conn: AsyncConnection) -> tuple[str, list[str] | None]:
        now = utcnow()
        key = await mfa.begin_enrolment(conn, secret, session.user_id, now)
        if not attempt.allowed:
            return key, None
        codes = await mfa.confirm_enrolment(conn, secret, session.user_id, code, now)
        if codes is not None:
            await accounts.attempt_succeeded(conn, attempt)
            await events.emit(
                conn,
                events.DomainEvent(
                    events.MFA_ENROLLED,
                    actor_for(request, session.clinic_id, session.user_id),
                    "user",
                    session.user_id,
                    {"method": "totp"},
                    now,
                ),
            )
        return key, codes

    try:
        key, codes = await ctx.db.write(confirm)
    except mfa.AlreadyEnrolled:
        return redirect(request, "/profile?notice=mfa-on")
    if codes is None:
        error = (
            "Too many wrong codes; wait 15 minutes and try again."
            if not attempt.allowed
            else "That code is not right. Check the app's clock and type the code it shows now."
        )
        return _setup_page(request, session, row, key, error, 429 if not attempt.allowed else 422)
    if session.pending is None:
        return page(request, "recovery_codes.html", codes=codes, continue_to="/profile")
    # Enrolment was the step left before the session could be used: it is whole now.
    token = await begin_session(
        request,
        user_id=session.user_id,
        clinic_id=session.clinic_id,
        method=session.method,
        pending=None,
        detail={"secondFactor": "totp-enrolment"},
    )
    response = page(
        request,
        "recovery_codes.html",
        codes=codes,
        continue_to=safe_next(field(form, "next") or "/users"),
    )
    set_session_cookie(request, response, token)
    return response


@router.post("/account/mfa/recovery-codes")
async def new_recovery_codes(request: Request) -> Response:
    me = await require_user(request)
    secret = ctx_of(request).settings.resolved_secret_key

    async def work(conn: AsyncConnection) -> list[str] | None:
        if not await mfa.is_enrolled(conn, me.id):
            return None
        now = utcnow()
        codes = await mfa.replace_recovery_codes(conn, secret, me.id, now)
        await events.emit(
            conn,
            events.DomainEvent(
                events.MFA_RECOVERY_CODES_REPLACED,
                actor_for(request, me.clinic_id, me.id),
                "user",
                me.id,
                {"recoveryCodes": len(codes)},
                now,
            ),
        )
        return codes

    codes = await ctx_of(request).db.write(work)
    if codes is None:
        return redirect(request, "/account/mfa/setup")
    return page(request, "recovery_codes.html", codes=codes, continue_to="/profile")
