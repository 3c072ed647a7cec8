"""Wire models of the users endpoints, and the User object as it is sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..clock import rfc3339
from ..fields import (
    AssignableLevel,
    ClinicRole,
    Email,
    InvitedSource,
    Name,
    Phone,
    Suffix,
    UserLevel,
    UserStatus,
    WireModel,
)


class UserInviteRequest(WireModel):
    """Create a user in the caller's clinic and send them an invitation email."""

    can_manage_studies: bool
    clinic_role: ClinicRole
    email: Email = Field(description="User's email address for login and notifications")
    first_name: Name
    has_dashboard_access: bool
    last_name: Name
    level: AssignableLevel
    middle_name: Name | None = None
    phone_number: Phone | None = Field(default=None, description="10-15 digits")
    suffix1: Suffix | None = None
    suffix2: Suffix | None = None


class UserOut(BaseModel):
    """A Viewer user. Optional fields are present with null when unset."""

    model_config = ConfigDict(alias_generator=to_camel, serialize_by_alias=True)

    user_id: str = Field(description="usr_ followed by 32 lowercase hex characters")
    email: str
    first_name: str
    middle_name: str | None
    last_name: str
    suffix1: str | None
    suffix2: str | None
    phone_number: str | None
    clinic_role: ClinicRole
    level: UserLevel
    can_manage_studies: bool
    has_dashboard_access: bool
    invited_source: InvitedSource
    created_at: datetime | None
    last_login_at: datetime | None
    status: UserStatus


def user_wire(row: Any) -> dict[str, Any]:
    """A users row (mapping with column names) as the User object on the wire."""
    return {
        "userId": row["id"],
        "email": row["email"],
        "firstName": row["first_name"],
        "middleName": row["middle_name"],
        "lastName": row["last_name"],
        "suffix1": row["suffix1"],
        "suffix2": row["suffix2"],
        "phoneNumber": row["phone_number"],
        "clinicRole": row["clinic_role"],
        "level": row["level"],
        "canManageStudies": row["can_manage_studies"],
        "hasDashboardAccess": row["has_dashboard_access"],
        "invitedSource": row["invited_source"],
        "createdAt": rfc3339(row["created_at"]),
        "lastLoginAt": rfc3339(row["last_login_at"]),
        "status": row["status"],
    }
