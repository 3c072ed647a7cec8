"""Queries on invitations."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..clinics.models import Clinic
from ..db import insert_rows
from ..email import outbox
from ..fields import envelope_address
from ..ids import INVITATION_ID, derive_token, new_invitation_id, token_hash
from ..pagination import Position, before
from ..users.models import User
from .models import Invitation

invitations = Invitation.__table__
users = User.__table__
clinics = Clinic.__table__

TOKEN_PURPOSE = "invitation"


def invitation_token(secret_key: bytes, invitation_id: str, nonce: str) -> str:
    return derive_token(secret_key, TOKEN_PURPOSE, invitation_id, nonce)


def _new_link(secret_key: bytes, invitation_id: str) -> tuple[str, str]:
    nonce = secrets.token_hex(16)
    return nonce, token_hash(invitation_token(secret_key, invitation_id, nonce))


@dataclass(frozen=True)
class NewInvitation:
    clinic_id: str
    user_id: str
    email: str
    inviter_id: str | None
    api_key_id: str | None
    invited_source: str
    expiry: datetime


async def create_and_queue_many(
    conn: AsyncConnection, secret_key: bytes, new: list[NewInvitation], now: datetime
) -> list[str]:
    """Insert `sent` invitations and queue their emails; returns their ids in order."""
    rows, queued = [], []
    for n in new:
        invitation_id = new_invitation_id()
        nonce, hashed = _new_link(secret_key, invitation_id)
        rows.append(
            {
                "id": invitation_id,
                "clinic_id": n.clinic_id,
                "user_id": n.user_id,
                "inviter_id": n.inviter_id,
                "invited_by_api_key_id": n.api_key_id,
                "invited_source": n.invited_source,
                "status": "sent",
                "token_nonce": nonce,
                "token_hash": hashed,
                "expiry": n.expiry,
                "delivery_status": "queued",
                "issued_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
        queued.append(
            outbox.Queued(
                n.clinic_id,
                outbox.INVITATION,
                invitation_id,
                envelope_address(n.email),
                {"nonce": nonce},
            )
        )
    await insert_rows(conn, invitations, rows)
    await outbox.enqueue_many(conn, queued, now)
    return [r["id"] for r in rows]


async def _queue_email(
    conn: AsyncConnection, clinic_id: str, invitation_id: str, email: str, nonce: str, now: datetime
) -> None:
    await outbox.enqueue(
        conn,
        clinic_id=clinic_id,
        kind=outbox.INVITATION,
        subject_id=invitation_id,
        recipient=envelope_address(email),
        payload={"nonce": nonce},
        now=now,
    )


async def reissue_and_queue(
    conn: AsyncConnection,
    *,
    secret_key: bytes,
    clinic_id: str,
    invitation_id: str,
    email: str,
    expiry: datetime,
    now: datetime,
) -> None:
    """A new link and expiry for a `sent` invitation, and its email; the old link dies (its
    hash is replaced) and its queued email is cancelled (the delivery loop checks the nonce)."""
    nonce, hashed = _new_link(secret_key, invitation_id)
    await conn.execute(
        update(invitations)
        .where(invitations.c.id == invitation_id)
        .values(
            token_nonce=nonce,
            token_hash=hashed,
            expiry=expiry,
            delivery_status="queued",
            issued_at=now,
            updated_at=now,
        )
    )
    await cancel_queued_email(conn, invitation_id)
    await _queue_email(conn, clinic_id, invitation_id, email, nonce, now)


async def revoke(conn: AsyncConnection, invitation_id: str, now: datetime) -> None:
    """Mark revoked. The link dies at once (every use of it checks the status), and keeping
    its hash lets the page it opens say that the clinic withdrew it."""
    await conn.execute(
        update(invitations)
        .where(invitations.c.id == invitation_id)
        .values(status="revoked", updated_at=now)
    )
    await cancel_queued_email(conn, invitation_id)


async def answer(conn: AsyncConnection, invitation_id: str, status: str, now: datetime) -> None:
    """The invitee's answer (accepted or rejected) to a still `sent` invitation."""
    await conn.execute(
        update(invitations)
        .where(invitations.c.id == invitation_id, invitations.c.status == "sent")
        .values(status=status, updated_at=now)
    )


async def touch(conn: AsyncConnection, invitation_id: str, now: datetime) -> None:
    await conn.execute(
        update(invitations).where(invitations.c.id == invitation_id).values(updated_at=now)
    )


async def cancel_queued_email(conn: AsyncConnection, invitation_id: str) -> None:
    """The invitation's email that has not gone out yet is cancelled (through the outbox)."""
    await outbox.cancel_pending(
        conn, outbox.INVITATION, invitation_id, "superseded by a resend or revocation"
    )


async def pending_for_user(conn: AsyncConnection, user_id: str) -> list[str]:
    """Ids of the user's `sent` invitations (normally one)."""
    rows = await conn.execute(
        select(invitations.c.id).where(
            invitations.c.user_id == user_id, invitations.c.status == "sent"
        )
    )
    return list(rows.scalars())


async def latest_for_user(conn: AsyncConnection, user_id: str) -> Any:
    return (
        await conn.execute(
            select(invitations.c.id, invitations.c.status)
            .where(invitations.c.user_id == user_id)
            .order_by(invitations.c.created_at.desc(), invitations.c.id.desc())
            .limit(1)
        )
    ).first()


async def was_accepted(conn: AsyncConnection, user_id: str) -> bool:
    found = await conn.execute(
        select(invitations.c.id)
        .where(invitations.c.user_id == user_id, invitations.c.status == "accepted")
        .limit(1)
    )
    return found.first() is not None


_JOINED = select(
    invitations.c.id,
    invitations.c.clinic_id,
    invitations.c.user_id,
    invitations.c.inviter_id,
    invitations.c.invited_by_api_key_id,
    invitations.c.invited_source,
    invitations.c.status,
    invitations.c.expiry,
    invitations.c.delivery_status,
    invitations.c.issued_at,
    invitations.c.created_at,
    invitations.c.updated_at,
    users.c.email,
    users.c.first_name,
    users.c.middle_name,
    users.c.last_name,
    users.c.suffix1,
    users.c.suffix2,
    users.c.phone_number,
    users.c.clinic_role,
    users.c.level,
    users.c.can_manage_studies,
    users.c.has_dashboard_access,
).join(users, users.c.id == invitations.c.user_id)


def with_people() -> Select[Any]:
    """Invitations joined with their user, clinic and inviter (if any): what the email and
    the accept page show. Callers add the WHERE."""
    inviter = users.alias("inviter")
    return (
        select(
            invitations.c.id,
            invitations.c.clinic_id,
            invitations.c.status,
            invitations.c.token_nonce,
            invitations.c.expiry,
            users.c.id.label("user_id"),
            users.c.email,
            users.c.first_name,
            users.c.last_name,
            users.c.clinic_role,
            users.c.level,
            users.c.has_dashboard_access,
            clinics.c.name.label("clinic_name"),
            inviter.c.first_name.label("inviter_first"),
            inviter.c.last_name.label("inviter_last"),
        )
        .join(users, users.c.id == invitations.c.user_id)
        .join(clinics, clinics.c.id == invitations.c.clinic_id)
        .outerjoin(inviter, inviter.c.id == invitations.c.inviter_id)
    )


async def by_token_hash(conn: AsyncConnection, hashed: str) -> Any:
    """The `with_people()` row of the invitation whose link hashes to this, or None."""
    return (await conn.execute(with_people().where(invitations.c.token_hash == hashed))).first()


async def latest_sent_for_user(conn: AsyncConnection, user_id: str) -> Any:
    """The `with_people()` row of the user's newest `sent` invitation, or None."""
    return (
        await conn.execute(
            with_people()
            .where(invitations.c.user_id == user_id, invitations.c.status == "sent")
            .order_by(invitations.c.created_at.desc(), invitations.c.id.desc())
            .limit(1)
        )
    ).first()


def inviter_name(row: Any) -> str | None:
    """The inviter's full name from a `with_people()` row; None when an API key invited."""
    if row.inviter_first is None:
        return None
    return f"{row.inviter_first} {row.inviter_last}"


async def get(
    conn: AsyncConnection, clinic_id: str, invitation_id: str, *, for_update: bool = False
) -> Any:
    """The clinic's invitation joined with its user's fields, or None (also for bad ids)."""
    if not INVITATION_ID.match(invitation_id):
        return None
    query = _JOINED.where(invitations.c.clinic_id == clinic_id, invitations.c.id == invitation_id)
    if for_update:
        query = query.with_for_update(of=invitations)
    return (await conn.execute(query)).mappings().first()


@dataclass(frozen=True)
class InvitationFilters:
    """The filters of invitations.list; None means not filtered."""

    statuses: tuple[str, ...] | None = None
    expired: str = "all"
    created_from: datetime | None = None
    created_before: datetime | None = None
    user_id: str | None = None
    q: str = ""  # the dashboard's search: part of the person's name or email


async def page(
    conn: AsyncConnection,
    clinic_id: str,
    filters: InvitationFilters,
    after: Position | None,
    limit: int,
    now: datetime,
) -> Sequence[Any]:
    """Up to `limit` invitations newest first, read along ix_invitations_clinic_created."""
    query = _filtered(_JOINED, clinic_id, filters, now)
    if after is not None:
        query = query.where(before(invitations.c.created_at, invitations.c.id, after))
    query = query.order_by(invitations.c.created_at.desc(), invitations.c.id.desc()).limit(limit)
    return (await conn.execute(query)).mappings().all()


async def count(
    conn: AsyncConnection, clinic_id: str, filters: InvitationFilters, now: datetime
) -> int:
    """How many invitations match the filters."""
    query = _filtered(
        select(func.count()).select_from(
            invitations.join(users, users.c.id == invitations.c.user_id)
        ),
        clinic_id,
        filters,
        now,
    )
    return int((await conn.execute(query)).scalar_one())


def _filtered(query: Any, clinic_id: str, filters: InvitationFilters, now: datetime) -> Any:
    query = query.where(invitations.c.clinic_id == clinic_id)
    if filters.q:
        # autoescape: a % or _ typed in the search box matches itself, not any text.
        q = filters.q.lower()
        query = query.where(
            or_(
                users.c.email_lower.contains(q, autoescape=True),
                func.lower(users.c.first_name + " " + users.c.last_name).contains(
                    q, autoescape=True
                ),
            )
        )
    if filters.statuses is not None:
        query = query.where(invitations.c.status.in_(filters.statuses))
    lapsed = and_(invitations.c.status == "sent", invitations.c.expiry <= now)
    if filters.expired == "expired":
        query = query.where(lapsed)
    elif filters.expired == "not-expired":
        query = query.where(not_(lapsed))
    if filters.created_from is not None:
        query = query.where(invitations.c.created_at >= filters.created_from)
    if filters.created_before is not None:
        query = query.where(invitations.c.created_at < filters.created_before)
    if filters.user_id is not None:
        query = query.where(invitations.c.user_id == filters.user_id)
    return query


async def forget_for_user(conn: AsyncConnection, user_id: str) -> list[str]:
    """Delete the user's invitations and their emails (erasing the person); returns the ids."""
    ids = list(
        (await conn.execute(select(invitations.c.id).where(invitations.c.user_id == user_id)))
        .scalars()
        .all()
    )
    await outbox.forget(conn, outbox.INVITATION, ids)
    await conn.execute(invitations.delete().where(invitations.c.user_id == user_id))
    return ids
