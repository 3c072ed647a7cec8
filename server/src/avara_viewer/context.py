"""What a running server shares between requests: settings, database, authenticator, wake-ups."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from .clinics.auth import ApiKeyAuthenticator, ApiPrincipal
from .config import Settings
from .db import Database
from .ops.ratelimit import RateLimiter


@dataclass
class AppContext:
    settings: Settings
    db: Database
    authenticator: ApiKeyAuthenticator
    rate_limiter: RateLimiter
    # Set after a commit that queued email, so the delivery loop in this process starts at once.
    outbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Batched mutations of this process, by name (see db.Batcher), made on first use.
    batchers: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings) -> AppContext:
        db = Database(settings)
        return cls(
            settings=settings,
            db=db,
            authenticator=ApiKeyAuthenticator(settings.resolved_secret_key),
            rate_limiter=RateLimiter(settings.rate_limit_per_minute, db),
        )


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def api_principal(request: Request) -> ApiPrincipal:
    ctx = get_context(request)
    principal = await ctx.authenticator.authenticate(request, ctx.db.read)
    ctx.rate_limiter.check(principal.api_key_id)
    return principal
