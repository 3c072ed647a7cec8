"""An invitation to join a clinic in Viewer."""

from datetime import datetime
from typing import Optional

from ..._models import BaseModel
from .enums import ClinicRole, InvitationStatus, InvitedSource, UserLevel

__all__ = ["Invitation"]


class Invitation(BaseModel):
    """An invitation; accepting it activates the user ``user_id`` names."""

    invitation_id: str
    """Unique invitation identifier. Format: inv_{32-hex-chars}"""

    user_id: str
    """The invited user's id, generated with the invitation and kept once it is accepted"""

    clinic_id: str
    """The clinic the invitation is to (UUID)"""

    email: str
    """Invitee's email address"""

    first_name: str
    """Invitee's first name"""

    middle_name: Optional[str] = None
    """Invitee's middle name (optional)"""

    last_name: str
    """Invitee's last name"""

    suffix1: Optional[str] = None
    """Name suffix (e.g., 'Jr.', 'Sr.', 'III') - optional"""

    suffix2: Optional[str] = None
    """Additional name suffix (optional)"""

    phone_number: Optional[str] = None
    """Invitee's phone number (10-15 digits, optional)"""

    clinic_role: ClinicRole
    """Invitee's clinical or organizational role"""

    level: UserLevel
    """Access level the invitee gets"""

    can_manage_studies: bool
    """Whether the invitee will be able to create, update, and manage studies"""

    has_dashboard_access: bool
    """Whether the invitee will be able to use the dashboard"""

    invited_source: InvitedSource
    """How the invitation was sent - via dashboard UI or API"""

    inviter_id: Optional[str] = None
    """The user who sent it; null when sent with an API key"""

    invited_by_api_key_id: Optional[str] = None
    """The API key that sent it; null when sent from the dashboard"""

    status: InvitationStatus
    """``sent``, ``accepted``, ``rejected`` (declined by the invitee) or ``revoked``"""

    expiry: Optional[datetime] = None
    """When the invitation link stops working"""

    created_at: Optional[datetime] = None
    """When the invitation was created"""

    updated_at: Optional[datetime] = None
    """When the invitation last changed"""
