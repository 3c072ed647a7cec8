"""What each SCIM call does to the clinic's people, inside one transaction. People are made
and changed only through flows (invite, revoke_access, reactivate, erase_person) and
users.service (create_active, update_user, activate_without_invitation); this module keeps
their SCIM identity (userName, externalId)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from .. import events, flows
from ..actor import Actor
from ..audit import service as audit
from ..config import Settings
from ..fields import email_key, validate
from ..users import service as users_service
from ..users.schemas import UserInviteRequest, validate_update
from . import groups
from . import patch as patching
from . import repository as repo
from .errors import ScimError, mutability, not_found
from .resource import ClinicDefaults, Desired, read_user, render


def _taken(user_name: str) -> ScimError:
    return ScimError(
        409,
        f"userName: {user_name!r} is already taken in this clinic.",
        "uniqueness",
        {"x-should-retry": "false"},
    )


async def _current(conn: AsyncConnection, actor: Actor, user_id: str) -> Any:
    row = await repo.get(conn, actor.clinic_id, user_id)
    if row is None:
        raise not_found(user_id)
    return row


async def create(
    conn: AsyncConnection, settings: Settings, actor: Actor, desired: Desired, now: datetime
) -> Any:
    """Provision a person: invited by email, or active at once when the clinic says so (or
    when the IdP sends active=false: then made and revoked without an email)."""
    defaults = ClinicDefaults.of(await repo.clinic_settings(conn, actor.clinic_id))
    if await repo.user_name_owner(conn, actor.clinic_id, desired.user_name.lower()):
        raise _taken(desired.user_name)
    request: UserInviteRequest = validate(UserInviteRequest, desired.invite_wire(defaults))
    if desired.active is False or defaults.activate_without_email:
        row = await users_service.create_active(conn, actor, request, now=now)
    else:
        row = await flows.invite(conn, settings, actor, request, now=now)
    if desired.active is False:
        await flows.revoke_access(conn, settings, actor, row["id"], now=now)
    await repo.save_identity(
        conn,
        user_id=row["id"],
        clinic_id=actor.clinic_id,
        user_name=desired.user_name,
        external_id=desired.external_id,
        display_name=desired.display_name,
        token_id=actor.id,
        now=now,
        exists=False,
    )
    return await repo.get(conn, actor.clinic_id, row["id"])


async def replace(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    user_id: str,
    desired: Desired,
    now: datetime,
) -> Any:
    """Make the person what `desired` says (PUT; PATCH after applying its operations)."""
    current = await _current(conn, actor, user_id)
    await users_service.check_may_change(conn, actor, current)
    if desired.email is not None and email_key(desired.email) != current["email_lower"]:
        raise mutability(
            f"emails: the address cannot be changed (it is {current['email']}); delete the "
            "person and provision them again to use another."
        )
    user_name = current["scim_user_name"] or current["email"]
    if desired.user_name.lower() != user_name.lower():
        owner = await repo.user_name_owner(conn, actor.clinic_id, desired.user_name.lower())
        if owner is not None and owner != user_id:
            raise _taken(desired.user_name)
    update = validate_update(desired.update_wire())
    await users_service.update_user(conn, settings, actor, user_id, update, now=now)
    revoked = current["status"] == "revoked"
    if desired.active is False and not revoked:
        await flows.revoke_access(conn, settings, actor, user_id, now=now)
    elif desired.active is True and revoked:
        defaults = ClinicDefaults.of(await repo.clinic_settings(conn, actor.clinic_id))
        if defaults.activate_without_email:
            await users_service.activate_without_invitation(conn, actor, user_id, now=now)
        else:
            await flows.reactivate(conn, settings, actor, user_id, now=now)
    external_id = desired.external_id if desired.external_id_given else current["scim_external_id"]
    identity_before = {
        "userName": user_name,
        "externalId": current["scim_external_id"],
        "displayName": current["scim_display_name"],
    }
    identity_after = {
        "userName": desired.user_name,
        "externalId": external_id,
        "displayName": desired.display_name,
    }
    changes = audit.diff(identity_before, identity_after)
    if changes:
        await repo.save_identity(
            conn,
            user_id=user_id,
            clinic_id=actor.clinic_id,
            user_name=desired.user_name,
            external_id=external_id,
            display_name=desired.display_name,
            token_id=None,
            now=now,
            exists=current["scim_user_name"] is not None,
        )
        await events.emit(
            conn, events.DomainEvent(events.USER_UPDATED, actor, "user", user_id, changes, now)
        )
    return await repo.get(conn, actor.clinic_id, user_id)


async def patch(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    user_id: str,
    body: Any,
    base: str,
    now: datetime,
) -> Any:
    current = await _current(conn, actor, user_id)
    patched = patching.apply(render(current, base, stored_only=True), body)
    desired = read_user(patched)
    # The patched document is complete: an externalId missing from it was removed.
    desired.external_id_given = True
    return await replace(conn, settings, actor, user_id, desired, now)


async def delete(
    conn: AsyncConnection, settings: Settings, actor: Actor, user_id: str, now: datetime
) -> None:
    """Erase the person for good (flows.erase_person) and their SCIM identity."""
    current = await _current(conn, actor, user_id)
    await users_service.check_may_change(conn, actor, current)
    await repo.forget_identity(conn, user_id)
    await groups.forget_member(conn, user_id)
    await flows.erase_person(conn, actor, user_id, now=now)


async def record_call(
    conn: AsyncConnection, actor: Actor, now: datetime, details: dict[str, Any]
) -> None:
    """Put a call that changed nothing (a read, a refused request) on the audit trail."""
    await events.emit(
        conn, events.DomainEvent(events.SCIM_REQUEST, actor, "scim", None, details, now)
    )
