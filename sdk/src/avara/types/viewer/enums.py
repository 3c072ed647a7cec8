"""The string enumerations of the Viewer API, as Literal types."""

from typing_extensions import Literal, TypeAlias

__all__ = [
    "AssignableLevel",
    "ClinicRole",
    "InvitationExpiredFilter",
    "InvitationStatus",
    "InvitedSource",
    "UserLevel",
    "UserStatus",
]

ClinicRole: TypeAlias = Literal[
    "Radiologist",
    "Cardiologist",
    "Neurologist",
    "Urologist",
    "Gynecologist",
    "Endocrinologist",
    "Doctor",
    "Surgeon",
    "Physician",
    "Physician Assistant",
    "Nurse Practitioner",
    "Registered Nurse",
    "Patient Care Coordinator",
    "Front Desk Operator",
    "Imaging Technologist",
    "PACS Administrator",
    "Software Engineer",
    "Revenue Cycle Manager",
    "Administrative Director",
    "Administrative Assistant",
    "Other",
]
"""User's clinical or organizational role."""

UserLevel: TypeAlias = Literal["owner", "admin", "member"]
"""Access level of an existing user; ``owner`` exists only through the dashboard."""

AssignableLevel: TypeAlias = Literal["admin", "member"]
"""Levels the API can assign: 'admin' can manage users/settings, 'member' has standard access."""

InvitedSource: TypeAlias = Literal["dashboard", "api"]
"""How the user was invited - via dashboard UI or API."""

InvitationStatus: TypeAlias = Literal["sent", "accepted", "rejected", "revoked"]
"""``rejected`` means the invitee declined."""

UserStatus: TypeAlias = Literal["invited", "active", "revoked"]
"""``invited``: the invitation is not yet accepted; ``revoked``: access was revoked."""

InvitationExpiredFilter: TypeAlias = Literal["all", "expired", "not-expired"]
