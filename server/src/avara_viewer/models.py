"""Every table, imported in one place so the metadata (and Alembic) sees them all."""

from .accounts.mfa_models import MfaRecoveryCode, MfaTotp
from .accounts.models import LoginThrottle, PasswordReset
from .accounts.session_models import DashboardSession
from .accounts.sso_models import OidcLogin, SignInPolicy, SsoConnection, SsoDomain, SsoLink
from .apikit.idempotency_store import IdempotencyRecord
from .audit.models import AuditEntry
from .clinics.models import ApiKey, Clinic
from .db import Base
from .email.outbox_models import OutboxMessage
from .invitations.models import Invitation
from .ops.models import RateLimitWindow
from .scim.models import (
    ScimGroup,
    ScimGroupMapping,
    ScimGroupMember,
    ScimSettings,
    ScimToken,
    ScimUser,
)
from .users.models import User
from .webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookSweep,
)

metadata = Base.metadata

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Clinic",
    "DashboardSession",
    "IdempotencyRecord",
    "Invitation",
    "LoginThrottle",
    "MfaRecoveryCode",
    "MfaTotp",
    "OidcLogin",
    "OutboxMessage",
    "PasswordReset",
    "RateLimitWindow",
    "ScimGroup",
    "ScimGroupMapping",
    "ScimGroupMember",
    "ScimSettings",
    "ScimToken",
    "ScimUser",
    "SignInPolicy",
    "SsoConnection",
    "SsoDomain",
    "SsoLink",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookSweep",
    "metadata",
]
