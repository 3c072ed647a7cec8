"""A clinic's SCIM settings: invite SCIM people by email or make them active at once, and the
values of clinicRole, level, canManageStudies and hasDashboardAccess when the IdP sends none."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from .. import events
from ..actor import Actor
from ..audit import service as audit
from ..clinics.service import clinic_name
from ..errors import NotFound, ValidationFailed
from ..fields import CLINIC_ROLES
from . import repository as repo
from .resource import ClinicDefaults


async def configure(
    conn: AsyncConnection,
    clinic_id: str,
    changes: dict[str, Any],
    now: datetime,
    actor: Actor | None = None,
) -> dict[str, Any]:
    """Apply `changes` (ClinicDefaults field names) and return every setting (the command
    line's change, unless `actor` is a dashboard admin)."""
    if await clinic_name(conn, clinic_id) is None:
        raise NotFound(f"No clinic with id {clinic_id}.")
    errors = []
    if "clinic_role" in changes and changes["clinic_role"] not in CLINIC_ROLES:
        errors.append({"field": "defaultClinicRole", "message": "must be a ClinicRole"})
    if "level" in changes and changes["level"] not in ("admin", "member"):
        errors.append({"field": "defaultLevel", "message": "must be admin or member"})
    before = ClinicDefaults.of(await repo.clinic_settings(conn, clinic_id))
    after = replace(before, **changes)
    if after.level == "admin" and not after.has_dashboard_access:
        errors.append(
            {"field": "defaultDashboardAccess", "message": "admins must have dashboard access"}
        )
    if errors:
        raise ValidationFailed("Invalid SCIM settings.", errors=errors)
    await repo.save_settings(
        conn,
        clinic_id,
        {
            "activate_without_email": after.activate_without_email,
            "default_clinic_role": after.clinic_role,
            "default_level": after.level,
            "default_can_manage_studies": after.can_manage_studies,
            "default_has_dashboard_access": after.has_dashboard_access,
            "updated_at": now,
        },
    )
    diff = audit.diff(asdict(before), asdict(after))
    if diff:
        await events.emit(
            conn,
            events.DomainEvent(
                events.SCIM_SETTINGS_UPDATED,
                actor or Actor(clinic_id=clinic_id, kind="cli", id=None),
                "clinic",
                clinic_id,
                diff,
                now,
            ),
        )
    return asdict(after)
