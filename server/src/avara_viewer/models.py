"""Every table, imported in one place so the metadata (and Alembic) sees them all."""

from .accounts.models import LoginThrottle, PasswordReset
from .apikit.idempotency_store import IdempotencyRecord
from .audit.models import AuditEntry
from .clinics.models import ApiKey, Clinic
from .db import Base
from .email.outbox_models import OutboxMessage
from .invitations.models import Invitation
from .ops.models import RateLimitWindow
from .users.models import User

metadata = Base.metadata

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Clinic",
    "IdempotencyRecord",
    "Invitation",
    "LoginThrottle",
    "OutboxMessage",
    "PasswordReset",
    "RateLimitWindow",
    "User",
    "metadata",
]
