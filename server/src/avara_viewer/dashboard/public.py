"""Pages reached without a session: accepting or declining an invitation and resetting a
forgotten password (signing in and out: signin.py)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from .. import flows
from ..accounts import service as accounts
from ..clock import utcnow
from ..context import AppContext
from ..invitations import service as invitations
from ..invitations.service import InvitationView
from ..links import LinkUnusable
from . import security, signin
from .web import (
    DashboardRoute,
    ctx_of,
    field,
    form_data,
    page,
    redirect,
)

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)
log = logging.getLogger("avara_viewer.dashboard")

# What happened to a link that cannot be used, in the invitee's words.
LINK_STATES = {
    "invalid": (
        "This link is not valid",
        "The link may be incomplete, it may have been withdrawn by your clinic, or it was "
        "replaced by a newer invitation email. Use the link in the most recent email you "
        "received.",
    ),
    "expired": ("This invitation has expired", "Invitations are valid for a limited time."),
    "revoked": ("This invitation was withdrawn", "The invitation was cancelled by your clinic."),
    "accepted": (
        "This invitation was already accepted",
        "Each invitation link can be used once. If you set a password, log in with it.",
    ),
    "rejected": ("This invitation was declined", "The invitation was declined with this link."),
    "used": ("This link was already used", "Each password reset link can be used once."),
}


def _link_problem(request: Request, reason: str, who: str, *, kind: str) -> Response:
    title, message = LINK_STATES.get(reason, LINK_STATES["invalid"])
    status = 404 if reason == "invalid" else 410
    return page(
        request,
        "link_problem.html",
        status=status,
        token_page=True,
        title=title,
        message=message,
        who=who,
        kind=kind,
        reason=reason,
    )


def _who_to_ask(view: InvitationView | None) -> str:
    if view is None:
        return "your clinic's administrator"
    if view.inviter_name:
        return f"{view.inviter_name} at {view.clinic_name}"
    return f"your clinic's administrator at {view.clinic_name}"


async def _invitation(request: Request, token: str) -> InvitationView | None:
    if not token or len(token) > 200:
        return None
    return await ctx_of(request).db.read(lambda conn: invitations.invitation_by_token(conn, token))


@router.get("/invitations/accept")
async def accept_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    view = await _invitation(request, token)
    if view is None:
        return _link_problem(request, "invalid", _who_to_ask(None), kind="invitation")
    state = view.state(utcnow())
    if state != "open":
        return _link_problem(request, state, _who_to_ask(view), kind="invitation")
    return page(request, "accept.html", token_page=True, invitation=view, token=token, errors={})


@router.post("/invitations/accept")
async def accept(request: Request) -> Response:
    ctx = ctx_of(request)
    form = await form_data(request)
    token = field(form, "token")
    view = await _invitation(request, token)
    if view is None:
        return _link_problem(request, "invalid", _who_to_ask(None), kind="invitation")
    if view.state(utcnow()) != "open":
        return _link_problem(request, view.state(utcnow()), _who_to_ask(view), kind="invitation")
    password_hash = None
    if view.has_dashboard_access:
        password = form.get("password")
        confirmation = form.get("password_confirmation")
        password = password if isinstance(password, str) else ""
        confirmation = confirmation if isinstance(confirmation, str) else ""
        errors = security.password_problems(
            password,
            confirmation,
            email=view.email,
            first_name=view.first_name,
            last_name=view.last_name,
        )
        if errors:
            return page(
                request,
                "accept.html",
                status=422,
                token_page=True,
                invitation=view,
                token=token,
                errors=errors,
            )
        password_hash = await security.hash_password(password)
    try:
        await ctx.db.write(
            lambda conn: flows.accept_invitation(conn, token, password_hash, utcnow())
        )
    except LinkUnusable as exc:
        return _link_problem(request, exc.reason, _who_to_ask(view), kind="invitation")
    if not view.has_dashboard_access:
        return page(request, "accepted.html", token_page=True, invitation=view)
    return await _signed_in_after_accepting(request, ctx, view)


async def _signed_in_after_accepting(
    request: Request, ctx: AppContext, view: InvitationView
) -> Response:
    """The password just set proves who they are: a session starts at once (with MFA
    enrolment pending when the clinic requires it), unless the clinic signs in with single
    sign-on only, in which case the page says so."""
    blocked, pending = await ctx.db.read(
        lambda conn: signin.after_password(
            conn, ctx.settings, user_id=view.user_id, clinic_id=view.clinic_id, level=view.level
        )
    )
    if blocked:
        return page(request, "accepted.html", token_page=True, invitation=view, sso_only=True)
    token = await signin.begin_session(
        request, user_id=view.user_id, clinic_id=view.clinic_id, method="password", pending=pending
    )
    response = page(
        request,
        "accepted.html",
        token_page=True,
        invitation=view,
        continue_to=signin.landing(pending, "/users"),
        enrol_first=pending == "mfa_enrol",
    )
    signin.set_session_cookie(request, response, token)
    return response


@router.post("/invitations/decline")
async def decline(request: Request) -> Response:
    form = await form_data(request)
    token = field(form, "token")
    view = await _invitation(request, token)
    try:
        if view is None:
            raise LinkUnusable("invalid")
        await ctx_of(request).db.write(lambda conn: flows.decline_invitation(conn, token, utcnow()))
    except LinkUnusable as exc:
        return _link_problem(request, exc.reason, _who_to_ask(view), kind="invitation")
    return page(request, "declined.html", token_page=True, invitation=view)


# --- password reset -----------------------------------------------------------------------


@router.get("/password-reset")
async def password_reset_page(request: Request) -> Response:
    token = request.query_params.get("token")
    if token is None:
        return page(request, "reset_request.html", sent=False)
    now = utcnow()
    try:
        account = await ctx_of(request).db.read(
            lambda conn: accounts.reset_by_token(conn, token[:200], now)
        )
    except LinkUnusable as exc:
        return _link_problem(request, exc.reason, "your clinic's administrator", kind="reset")
    return page(
        request, "reset_form.html", token_page=True, token=token, account=account, errors={}
    )


# Reset requests still being looked up (a reference keeps each task alive until it ends).
_reset_requests: set[asyncio.Task[None]] = set()


async def _start_reset_request(ctx: AppContext, email: str) -> None:
    task = asyncio.create_task(_request_reset(ctx, email))
    _reset_requests.add(task)
    task.add_done_callback(_reset_requests.discard)


async def _request_reset(ctx: AppContext, email: str) -> None:
    """Queue reset emails for the accounts under this address, if any. Runs detached from the
    request: a known address costs a lookup, a token and a queued email, an unknown one only
    the lookup, and answering only after that work told the two apart (issue 11)."""
    try:
        await ctx.db.write(
            lambda conn: accounts.request_password_reset(
                conn, ctx.settings.resolved_secret_key, email, utcnow()
            )
        )
    except Exception:
        log.exception("a password reset request could not be recorded")
    # No outbox wake-up: the delivery loop's next poll sends it, so no burst of work follows
    # a known address (the wake-up would say which requests queued an email).


@router.post("/password-reset")
async def password_reset(request: Request) -> Response:
    ctx = ctx_of(request)
    form = await form_data(request)
    token = field(form, "token")
    if not token:
        email = field(form, "email")[:320]
        answer = page(request, "reset_request.html", sent=True)
        if email:
            # Looked up once the answer has been sent, in a task of its own (so the
            # connection's next request does not wait for it either): the page's work is the
            # same whether the address is known.
            answer.background = BackgroundTask(_start_reset_request, ctx, email)
        return answer
    now = utcnow()
    try:
        account = await ctx.db.read(lambda conn: accounts.reset_by_token(conn, token[:200], now))
    except LinkUnusable as exc:
        return _link_problem(request, exc.reason, "your clinic's administrator", kind="reset")
    password = form.get("password")
    confirmation = form.get("password_confirmation")
    password = password if isinstance(password, str) else ""
    errors = security.password_problems(
        password,
        confirmation if isinstance(confirmation, str) else "",
        email=account["email"],
        first_name=account["first_name"],
        last_name=account["last_name"],
    )
    if errors:
        return page(
            request,
            "reset_form.html",
            status=422,
            token_page=True,
            token=token,
            account=account,
            errors=errors,
        )
    password_hash = await security.hash_password(password)
    try:
        await ctx.db.write(
            lambda conn: accounts.complete_password_reset(conn, token, password_hash, utcnow())
        )
    except LinkUnusable as exc:
        return _link_problem(request, exc.reason, "your clinic's administrator", kind="reset")
    return redirect(request, "/login?notice=password-changed")
