"""Wire models of the invitations endpoints, and the Invitation object as it is sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..clock import rfc3339
from ..fields import ClinicRole, InvitationStatus, InvitedSource, UserLevel, WireModel

DeliveryStatus = Literal["queued", "sent", "failed"]


class InvitationOut(BaseModel):
    """An invitation to join the clinic; the person's fields are those of the pending user."""

    model_config = ConfigDict(alias_generator=to_camel, serialize_by_alias=True)

    invitation_id: str = Field(description="inv_ followed by 32 lowercase hex characters")
    user_id: str
    clinic_id: str
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
    inviter_id: str | None
    invited_by_api_key_id: str | None
    status: InvitationStatus
    expiry: datetime
    created_at: datetime
    updated_at: datetime
    delivery_status: DeliveryStatus = Field(
        description="Whether the mail server took the latest email: queued, sent or failed"
    )


class InvitationListOut(BaseModel):
    """One page of invitations, newest first."""

    invitations: list[InvitationOut]
    cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")
    has_more: bool = Field(alias="hasMore")


class InvitationRevokeRequest(WireModel):
    """Exactly one of `invitationId` or `userId`."""

    invitation_id: str | None = None
    user_id: str | None = None


def invitation_wire(row: Any) -> dict[str, Any]:
    """A joined invitations+users row as the Invitation object on the wire."""
    return {
        "invitationId": row["id"],
        "userId": row["user_id"],
        "clinicId": row["clinic_id"],
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
        "inviterId": row["inviter_id"],
        "invitedByApiKeyId": row["invited_by_api_key_id"],
        "status": row["status"],
        "expiry": rfc3339(row["expiry"]),
        "createdAt": rfc3339(row["created_at"]),
        "updatedAt": rfc3339(row["updated_at"]),
        "deliveryStatus": row["delivery_status"],
    }
