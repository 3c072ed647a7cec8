"""A clinic's single sign-on connection: configuring it (issuer, client id, sealed client
secret, email domains, required or not, joining with defaults), finding the clinic an email
address's domain belongs to, and the link between a person and their provider `sub`.

Operations take the caller's transaction and never commit; discovery (network) happens before,
in the caller, so a write never waits on a provider.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .. import events, secretbox
from ..actor import Actor
from ..audit.service import diff
from ..clinics.service import clinic_name
from ..db import Database
from ..errors import Conflict, NotFound, ValidationFailed
from .oidc import AuthorizationRequest, OidcError, RelyingParty, normalise_issuer
from .sso_models import OidcLogin, SsoConnection, SsoDomain, SsoLink

connections = SsoConnection.__table__
domains_table = SsoDomain.__table__
links = SsoLink.__table__
oidc_logins = OidcLogin.__table__

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
MAX_DOMAINS = 50


@dataclass(frozen=True)
class SsoSettings:
    """A clinic's connection as the flows need it (client secret opened)."""

    clinic_id: str
    issuer: str
    client_id: str
    client_secret: str
    domains: tuple[str, ...]
    required: bool
    join_with_defaults: bool


@dataclass(frozen=True)
class SsoRequest:
    """A configuration as an admin or operator gives it; `client_secret` None keeps the
    stored one (the settings page never shows it back)."""

    issuer: str
    client_id: str
    client_secret: str | None
    domains: tuple[str, ...]
    required: bool
    join_with_defaults: bool


def _context(clinic_id: str) -> str:
    return f"sso-connection:{clinic_id}"


def normalise_domain(value: str) -> str:
    domain = value.strip().lower().removeprefix("@").rstrip(".")
    # An internationalised domain is compared in its ASCII form; one that does not encode is
    # refused by the pattern below, with a message naming it.
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    if not _DOMAIN.match(domain):
        raise ValueError(f"{value!r} is not an email domain such as hospital.org.")
    return domain


def check_request(request: SsoRequest, *, has_secret: bool) -> SsoRequest:
    """The request with issuer and domains normalised; a 422 naming every bad field."""
    errors: list[dict[str, str]] = []
    issuer = request.issuer
    try:
        issuer = normalise_issuer(request.issuer)
    except OidcError as exc:
        errors.append({"field": "issuer", "message": exc.message})
    client_id = request.client_id.strip()
    if not client_id or len(client_id) > 500:
        errors.append({"field": "clientId", "message": "Give the client id (1-500 characters)."})
    secret = request.client_secret
    if secret is not None:
        secret = secret.strip()
    if not secret and not has_secret:
        errors.append({"field": "clientSecret", "message": "Give the client secret."})
    domains: list[str] = []
    for value in request.domains:
        if not value.strip():
            continue
        try:
            domain = normalise_domain(value)
        except ValueError as exc:
            errors.append({"field": "domains", "message": str(exc)})
            continue
        if domain not in domains:
            domains.append(domain)
    if not domains and not any(e["field"] == "domains" for e in errors):
        errors.append(
            {"field": "domains", "message": "Give at least one email domain of your people."}
        )
    if len(domains) > MAX_DOMAINS:
        errors.append({"field": "domains", "message": f"At most {MAX_DOMAINS} domains."})
    if errors:
        raise ValidationFailed("The single sign-on settings are not valid.", errors=errors)
    return SsoRequest(
        issuer=issuer,
        client_id=client_id,
        client_secret=secret or None,
        domains=tuple(domains),
        required=request.required,
        join_with_defaults=request.join_with_defaults,
    )


async def configure(
    conn: AsyncConnection,
    server_secret: bytes,
    actor: Actor,
    request: SsoRequest,
    now: datetime,
) -> SsoSettings:
    """Create or replace the clinic's connection (the request already checked, the issuer's
    discovery already fetched); audited without the secret."""
    clinic_id = actor.clinic_id
    before = await settings_of(conn, server_secret, clinic_id)
    taken = (
        (
            await conn.execute(
                select(domains_table.c.domain).where(
                    domains_table.c.domain.in_(request.domains),
                    domains_table.c.clinic_id != clinic_id,
                )
            )
        )
        .scalars()
        .all()
    )
    if taken:
        raise Conflict(
            "These domains already sign in through another clinic: " + ", ".join(sorted(taken)),
            code="sso_domain_taken",
        )
    secret = request.client_secret or (before.client_secret if before else None)
    if secret is None:
        raise ValidationFailed(
            "The single sign-on settings are not valid.",
            errors=[{"field": "clientSecret", "message": "Give the client secret."}],
        )
    values = {
        "issuer": request.issuer,
        "client_id": request.client_id,
        "client_secret_sealed": secretbox.seal(server_secret, _context(clinic_id), secret),
        "required": request.required,
        "join_with_defaults": request.join_with_defaults,
        "updated_at": now,
    }
    if before is None:
        await conn.execute(
            insert(connections).values(clinic_id=clinic_id, created_at=now, **values)
        )
    else:
        await conn.execute(
            update(connections).where(connections.c.clinic_id == clinic_id).values(**values)
        )
    await conn.execute(delete(domains_table).where(domains_table.c.clinic_id == clinic_id))
    await conn.execute(
        insert(domains_table), [{"domain": d, "clinic_id": clinic_id} for d in request.domains]
    )
    after = SsoSettings(
        clinic_id=clinic_id,
        issuer=request.issuer,
        client_id=request.client_id,
        client_secret=secret,
        domains=request.domains,
        required=request.required,
        join_with_defaults=request.join_with_defaults,
    )
    changes = diff(_audited(before), _audited(after))
    if before is None or before.client_secret != secret:
        changes["clientCredential"] = {"before": None if before is None else "set", "after": "set"}
    await events.emit(
        conn,
        events.DomainEvent(
            type=events.SSO_CONFIGURED,
            actor=actor,
            target_type="clinic",
            target_id=clinic_id,
            changes=changes,
            now=now,
        ),
    )
    return after


def _audited(settings: SsoSettings | None) -> dict[str, object]:
    if settings is None:
        return {}
    return {
        "issuer": settings.issuer,
        "clientId": settings.client_id,
        "domains": list(settings.domains),
        "required": settings.required,
        "joinWithDefaults": settings.join_with_defaults,
    }


async def settings_of(
    conn: AsyncConnection, server_secret: bytes, clinic_id: str
) -> SsoSettings | None:
    row = (
        await conn.execute(select(connections).where(connections.c.clinic_id == clinic_id))
    ).first()
    if row is None:
        return None
    domains = (
        (
            await conn.execute(
                select(domains_table.c.domain)
                .where(domains_table.c.clinic_id == clinic_id)
                .order_by(domains_table.c.domain)
            )
        )
        .scalars()
        .all()
    )
    return SsoSettings(
        clinic_id=clinic_id,
        issuer=row.issuer,
        client_id=row.client_id,
        client_secret=secretbox.open_sealed(
            server_secret, _context(clinic_id), row.client_secret_sealed
        ),
        domains=tuple(domains),
        required=row.required,
        join_with_defaults=row.join_with_defaults,
    )


async def clinic_for_email(conn: AsyncConnection, email: str) -> str | None:
    """The clinic whose provider signs in addresses of this email's domain, if any."""
    domain = email.rpartition("@")[2].strip().lower()
    if not domain:
        return None
    return await conn.scalar(
        select(domains_table.c.clinic_id).where(domains_table.c.domain == domain)
    )


async def required_for(conn: AsyncConnection, clinic_id: str) -> bool:
    required = await conn.scalar(
        select(connections.c.required).where(connections.c.clinic_id == clinic_id)
    )
    return bool(required)


async def linked_subject(conn: AsyncConnection, user_id: str) -> tuple[str, str] | None:
    """(issuer, sub) linked to the person, if they have signed in with the provider."""
    row = (
        await conn.execute(
            select(links.c.issuer, links.c.subject).where(links.c.user_id == user_id)
        )
    ).first()
    return (row.issuer, row.subject) if row is not None else None


async def unlink(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(delete(links).where(links.c.user_id == user_id))


async def subject_owner(
    conn: AsyncConnection, clinic_id: str, issuer: str, subject: str
) -> str | None:
    """The person of the clinic this provider `sub` is linked to, if any."""
    return await conn.scalar(
        select(links.c.user_id).where(
            links.c.clinic_id == clinic_id, links.c.issuer == issuer, links.c.subject == subject
        )
    )


async def link(
    conn: AsyncConnection, clinic_id: str, user_id: str, issuer: str, subject: str, now: datetime
) -> None:
    await conn.execute(
        insert(links).values(
            user_id=user_id, clinic_id=clinic_id, issuer=issuer, subject=subject, linked_at=now
        )
    )


async def require_clinic(conn: AsyncConnection, clinic_id: str) -> None:
    if await clinic_name(conn, clinic_id) is None:
        raise NotFound(f"No clinic with id {clinic_id}.")


async def configure_checked(
    db: Database,
    relying_party: RelyingParty,
    server_secret: bytes,
    actor: Actor,
    request: SsoRequest,
    now: datetime,
) -> SsoSettings:
    """Check the request, fetch the issuer's discovery document (so a typo or an unreachable
    provider is refused now, not at the first sign-in), then store the connection."""
    existing = await db.read(lambda conn: connection_exists(conn, actor.clinic_id))
    request = check_request(request, has_secret=existing)
    await relying_party.discover(request.issuer, refresh=True)

    async def work(conn: AsyncConnection) -> SsoSettings:
        await require_clinic(conn, actor.clinic_id)
        return await configure(conn, server_secret, actor, request, now)

    return await db.write(work)


async def connection_exists(conn: AsyncConnection, clinic_id: str) -> bool:
    found = await conn.scalar(
        select(connections.c.clinic_id).where(connections.c.clinic_id == clinic_id)
    )
    return found is not None


# --- sign-ins in progress -----------------------------------------------------------------

LOGIN_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class PendingLogin:
    clinic_id: str
    nonce: str
    code_verifier: str
    email_hint: str
    next_path: str


def state_hash(server_secret: bytes, state: str) -> str:
    return hmac.new(server_secret, b"oidc-state:" + state.encode(), hashlib.sha256).hexdigest()


async def remember_login(
    conn: AsyncConnection,
    server_secret: bytes,
    clinic_id: str,
    request: AuthorizationRequest,
    *,
    email_hint: str,
    next_path: str,
    now: datetime,
) -> None:
    key = state_hash(server_secret, request.state)
    await conn.execute(delete(oidc_logins).where(oidc_logins.c.expires_at <= now))
    await conn.execute(
        insert(oidc_logins).values(
            state_hash=key,
            clinic_id=clinic_id,
            nonce=request.nonce,
            code_verifier_sealed=secretbox.seal(
                server_secret, f"oidc-login:{key}", request.code_verifier
            ),
            email_hint=email_hint[:320],
            next_path=next_path[:500],
            created_at=now,
            expires_at=now + LOGIN_TTL,
        )
    )


async def take_login(
    conn: AsyncConnection, server_secret: bytes, state: str, now: datetime
) -> PendingLogin | None:
    """The sign-in that sent `state`, used up: a second callback with it finds nothing."""
    if not state or len(state) > 200:
        return None
    key = state_hash(server_secret, state)
    row = (await conn.execute(select(oidc_logins).where(oidc_logins.c.state_hash == key))).first()
    if row is None:
        return None
    result = await conn.execute(delete(oidc_logins).where(oidc_logins.c.state_hash == key))
    if result.rowcount != 1 or row.expires_at <= now:
        return None
    return PendingLogin(
        clinic_id=row.clinic_id,
        nonce=row.nonce,
        code_verifier=secretbox.open_sealed(
            server_secret, f"oidc-login:{key}", row.code_verifier_sealed
        ),
        email_hint=row.email_hint,
        next_path=row.next_path,
    )
