"""Wire models of the users endpoints, and the User object as it is sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..clock import rfc3339
from ..errors import ValidationFailed
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
    validate,
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


class UserUpdateRequest(WireModel):
    """Change any of the invite fields but `email`; `null` clears an optional field."""

    can_manage_studies: bool | None = None
    clinic_role: ClinicRole | None = None
    first_name: Name | None = None
    has_dashboard_access: bool | None = None
    last_name: Name | None = None
    level: AssignableLevel | None = None
    middle_name: Name | None = None
    phone_number: Phone | None = Field(default=None, description="10-15 digits; null clears it")
    suffix1: Suffix | None = None
    suffix2: Suffix | None = None


# Fields an update may not set to null: they have no "unset" state.
REQUIRED_ON_UPDATE = (
    "canManageStudies",
    "clinicRole",
    "firstName",
    "hasDashboardAccess",
    "lastName",
    "level",
)


def validate_update(data: dict[str, Any]) -> UserUpdateRequest:
    """Validate an update body (wire names) and raise one 422 naming every bad field."""
    errors: list[dict[str, str]] = []
    rest = dict(data)
    if "email" in rest:
        del rest["email"]
        errors.append({"field": "email", "message": "cannot be changed after the invitation"})
    for name in REQUIRED_ON_UPDATE:
        if name in rest and rest[name] is None:
            del rest[name]
            errors.append({"field": name, "message": "cannot be null; leave it out to keep it"})
    try:
        update: UserUpdateRequest = validate(UserUpdateRequest, rest)
    except ValidationFailed as exc:
        errors.extend(exc.errors or [])
    if errors:
        names = ", ".join(dict.fromkeys(e["field"] for e in errors))
        raise ValidationFailed(f"Invalid fields: {names}.", errors=errors)
    return update


class UserIdRequest(WireModel):
    """Names the user an action applies to."""

    user_id: str = Field(description="usr_ followed by 32 lowercase hex characters")


class SuccessOut(BaseModel):
    """The outcome of an action that returns no object."""

    success: bool
    message: str


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


class UserListOut(BaseModel):
    """One page of users, newest first."""

    users: list[UserOut]
    cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")
    has_more: bool = Field(alias="hasMore")


# The wire names of the user's editable fields, and their column names.
EDITABLE_FIELDS = {
    "firstName": "first_name",
    "middleName": "middle_name",
    "lastName": "last_name",
    "suffix1": "suffix1",
    "suffix2": "suffix2",
    "phoneNumber": "phone_number",
    "clinicRole": "clinic_role",
    "level": "level",
    "canManageStudies": "can_manage_studies",
    "hasDashboardAccess": "has_dashboard_access",
}
