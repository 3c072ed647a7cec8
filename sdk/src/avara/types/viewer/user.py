"""A Viewer user, as ``users.list``, ``users.retrieve`` and ``users.update`` return it."""

from datetime import datetime
from typing import Optional

from ..._models import BaseModel
from .enums import ClinicRole, InvitedSource, UserLevel, UserStatus

__all__ = ["User"]


class User(BaseModel):
    """A person of the clinic in Viewer, invited or active or revoked."""

    user_id: str
    """Unique user identifier. Format: usr_{32-hex-chars}"""

    email: str
    """User's email address for login and notifications"""

    first_name: str
    """User's first name"""

    middle_name: Optional[str] = None
    """User's middle name (optional)"""

    last_name: str
    """User's last name"""

    suffix1: Optional[str] = None
    """Name suffix (e.g., 'Jr.', 'Sr.', 'III') - optional"""

    suffix2: Optional[str] = None
    """Additional name suffix (optional)"""

    phone_number: Optional[str] = None
    """User's phone number (10-15 digits, optional)"""

    clinic_role: ClinicRole
    """User's clinical or organizational role"""

    level: UserLevel
    """Access level; ``owner`` appears in lists but cannot be assigned through the API"""

    can_manage_studies: bool
    """Whether the user has permission to create, update, and manage studies"""

    has_dashboard_access: bool
    """Whether the user can access the dashboard interface. Required for admin users"""

    invited_source: InvitedSource
    """How the user was invited - via dashboard UI or API"""

    created_at: Optional[datetime] = None
    """Timestamp when the user was created"""

    last_login_at: Optional[datetime] = None
    """Timestamp of user's last login, null if never logged in"""

    status: Optional[UserStatus] = None
    """``invited`` (invitation not yet accepted), ``active``, or ``revoked``"""
