"""Types of the ``viewer`` resources."""

from .enums import (
    AssignableLevel,
    ClinicRole,
    InvitationExpiredFilter,
    InvitationStatus,
    InvitedSource,
    UserLevel,
    UserStatus,
)
from .invitation import Invitation
from .success_response import SuccessResponse
from .user import User
from .user_invite_response import UserInviteResponse

__all__ = [
    "AssignableLevel",
    "ClinicRole",
    "Invitation",
    "InvitationExpiredFilter",
    "InvitationStatus",
    "InvitedSource",
    "SuccessResponse",
    "User",
    "UserInviteResponse",
    "UserLevel",
    "UserStatus",
]
