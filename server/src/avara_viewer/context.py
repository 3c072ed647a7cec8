"""The composition root: what a running server shares between requests — settings, database,
authenticator, rate limiter, the invite batcher and the outbox wake-up — made at start-up;
and the email delivery loop with every kind of email registered."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from . import flows
from .accounts.emails import PasswordResetEmails
from .accounts.oidc import RelyingParty
from .apikit.idempotent import IdempotentBatcher
from .clinics.auth import ApiKeyAuthenticator, ApiPrincipal
from .config import Settings
from .db import Database, open_database
from .email.delivery import DeliveryLoop
from .email.kinds import EmailKinds
from .invitations.emails import InvitationEmails
from .ops import metrics
from .ops.ratelimit import RateLimiter
from .users import service as users_service
from .users.schemas import user_wire
from .webhooks.emails import WebhookDisabledEmails


class ApiInvites:
    """Invites of concurrent API requests, made together (see flows.invite_many)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def run(
        self, conn: AsyncConnection, items: list[users_service.InviteItem]
    ) -> list[tuple[int, dict[str, Any]] | Exception]:
        outcomes = await flows.invite_many(conn, self.settings, items)
        return [o if isinstance(o, Exception) else (201, user_wire(o)) for o in outcomes]


@dataclass
class AppContext:
    settings: Settings
    db: Database
    authenticator: ApiKeyAuthenticator
    rate_limiter: RateLimiter
    # POST /v1/viewer/users: concurrent invites share one transaction (see db.Batcher).
    invite_batcher: IdempotentBatcher[users_service.InviteItem]
    # Set after a commit that queued email, so the delivery loop in this process starts at once.
    outbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Single sign-on: the HTTP client and the providers' discovery documents and keys.
    relying_party: RelyingParty = field(default_factory=RelyingParty)

    @classmethod
    def create(cls, settings: Settings) -> AppContext:
        db = open_database(settings)
        return cls(
            settings=settings,
            db=db,
            authenticator=ApiKeyAuthenticator(settings.resolved_secret_key),
            rate_limiter=RateLimiter(settings.rate_limit_per_minute, db),
            invite_batcher=IdempotentBatcher(ApiInvites(settings), settings.idempotency_ttl),
        )


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def api_principal(request: Request) -> ApiPrincipal:
    return await authorize(get_context(request), request.headers.get("authorization"))


async def authorize(ctx: AppContext, authorization: str | None) -> ApiPrincipal:
    """An API request's key checked (401), its rate limit applied (429) and its use noted:
    for FastAPI's routes (api_principal) and the lean routes (users.lean) alike."""
    principal = await ctx.authenticator.authenticate_header(authorization, ctx.db.read)
    ctx.rate_limiter.check(principal.api_key_id)
    ctx.authenticator.note_use(principal, ctx.db.write)
    return principal


def email_kinds(settings: Settings) -> EmailKinds:
    """Every kind of email this server sends (see email.kinds)."""
    return EmailKinds(
        [
            InvitationEmails(settings),
            PasswordResetEmails(settings),
            WebhookDisabledEmails(settings),
        ]
    )


def delivery_loop(
    settings: Settings, db: Database, wakeup: asyncio.Event | None = None
) -> DeliveryLoop:
    """The outbox's delivery loop, with this server's email kinds, counting outcomes in the
    metrics."""
    return DeliveryLoop(
        settings,
        db,
        email_kinds(settings),
        wakeup,
        observe=metrics.record_email_outcomes,
        observe_lease_lost=metrics.record_lease_lost,
    )
