"""Business rules of users. Services run inside a transaction given to them; they never commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ..actor import Actor
from ..config import Settings
from ..errors import Conflict
from ..fields import email_key
from ..ids import new_user_id
from ..invitations import repository as invitations_repo
from . import repository as repo
from .schemas import UserInviteRequest


async def invite(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    request: UserInviteRequest,
    *,
    now: datetime,
    level: str | None = None,
) -> dict[str, Any]:
    """Create a pending user, a `sent` invitation and its queued email; returns the users row."""
    lowered = email_key(request.email)
    if await repo.id_by_email(conn, actor.clinic_id, lowered) is not None:
        raise Conflict(
            f"A user with the email {request.email} already exists in this clinic "
            "(if their access was revoked, reactivate them instead).",
            code="email_already_exists",
        )
    row: dict[str, Any] = {
        "id": new_user_id(),
        "clinic_id": actor.clinic_id,
        "email": request.email,
        "email_lower": lowered,
        "first_name": request.first_name,
        "middle_name": request.middle_name,
        "last_name": request.last_name,
        "suffix1": request.suffix1,
        "suffix2": request.suffix2,
        "phone_number": request.phone_number,
        "clinic_role": request.clinic_role,
        "level": level or request.level,
        "can_manage_studies": request.can_manage_studies,
        "has_dashboard_access": request.has_dashboard_access,
        "invited_source": actor.invited_source,
        "inviter_id": actor.id if actor.kind == "user" else None,
        "status": "invited",
        "password_hash": None,
        "session_version": 0,
        "created_at": now,
        "updated_at": now,
        "last_login_at": None,
    }
    await repo.insert(conn, row)
    await invitations_repo.create_and_queue(
        conn,
        secret_key=settings.resolved_secret_key,
        clinic_id=actor.clinic_id,
        user_id=row["id"],
        email=request.email,
        inviter_id=row["inviter_id"],
        api_key_id=actor.id if actor.kind == "api_key" else None,
        invited_source=actor.invited_source,
        expiry=now + settings.invitation_ttl,
        now=now,
    )
    return row
