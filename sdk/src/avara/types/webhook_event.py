"""The events Avara Viewer POSTs to webhook endpoints (``client.webhooks.unwrap`` parses them)."""

from datetime import datetime
from typing import Any, Dict, Literal, Optional, Union

from .._models import BaseModel
from .viewer.invitation import Invitation
from .viewer.user import User

__all__ = [
    "InvitationWebhookEvent",
    "UnknownWebhookEvent",
    "UnwrapWebhookEvent",
    "UserWebhookEvent",
    "WebhookTestEvent",
    "WebhookTestEventData",
]

UserEventType = Literal[
    "user.invited", "user.updated", "user.access_revoked", "user.reactivated", "user.deleted"
]
InvitationEventType = Literal[
    "invitation.accepted",
    "invitation.declined",
    "invitation.revoked",
    "invitation.resent",
    "invitation.expired",
    "invitation.email_delivered",
    "invitation.email_failed",
]


class UserWebhookEvent(BaseModel):
    """Something happened to a user; ``data`` is the user as the API returns it now."""

    id: str
    """The event id (``whe_`` + 32 hex), also sent as the ``webhook-id`` header"""

    type: UserEventType
    created_at: Optional[datetime] = None
    data: User


class InvitationWebhookEvent(BaseModel):
    """Something happened to an invitation; ``data`` is the invitation as the API returns it."""

    id: str
    type: InvitationEventType
    created_at: Optional[datetime] = None
    data: Invitation


class WebhookTestEventData(BaseModel):
    endpoint_id: str
    message: str


class WebhookTestEvent(BaseModel):
    """Sent by ``POST /v1/viewer/webhook-endpoints/{endpointId}/test``."""

    id: str
    type: Literal["webhook.test"]
    created_at: Optional[datetime] = None
    data: WebhookTestEventData


class UnknownWebhookEvent(BaseModel):
    """An event type this version of the client does not know (a newer server sent it)."""

    id: str
    type: str
    created_at: Optional[datetime] = None
    data: Dict[str, Any]


UnwrapWebhookEvent = Union[
    UserWebhookEvent, InvitationWebhookEvent, WebhookTestEvent, UnknownWebhookEvent
]
