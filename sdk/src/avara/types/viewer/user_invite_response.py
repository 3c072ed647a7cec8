"""The response of ``users.invite``."""

from datetime import datetime
from typing import Optional

from ..._models import BaseModel
from .enums import AssignableLevel, ClinicRole, InvitedSource

__all__ = ["UserInviteResponse"]


class UserInviteResponse(BaseModel):
    """Response for inviting a user to Viewer.

    Level is restricted to admin/member since owners cannot be invited via API.
    """

    can_manage_studies: bool
    """Whether the user has permission to create, update, and manage studies"""

    clinic_role: ClinicRole
    """User's clinical or organizational role"""

    created_at: Optional[datetime] = None
    """Timestamp when the user was created"""

    email: str
    """User's email address for login and notifications"""

    first_name: str
    """User's first name"""

    has_dashboard_access: bool
    """Whether the user can access the dashboard interface. Required for admin users"""

    invited_source: InvitedSource
    """How the user was invited - via dashboard UI or API"""

    last_login_at: Optional[datetime] = None
    """Timestamp of user's last login, null if never logged in"""

    last_name: str
    """User's last name"""

    level: AssignableLevel
    """User access level. 'admin' can manage users/settings, 'member' has standard access"""

    user_id: str
    """Unique user identifier. Format: usr_{32-hex-chars}"""

    middle_name: Optional[str] = None
    """User's middle name (optional)"""

    phone_number: Optional[str] = None
    """User's phone number (10-15 digits, optional)"""

    suffix1: Optional[str] = None
    """Name suffix (e.g., 'Jr.', 'Sr.', 'III') - optional"""

    suffix2: Optional[str] = None
    """Additional name suffix (optional)"""
