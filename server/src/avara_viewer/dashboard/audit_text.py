"""The audit trail in words for a practice manager: who did it, a sentence for what, whom it
was about (a linked name), and each change as before → after."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .web import LEVEL_LABELS

ACTION_LABELS = {
    "user.invited": "Person invited",
    "user.updated": "Details changed",
    "user.access_revoked": "Access revoked",
    "user.reactivated": "Access restored",
    "invitation.updated": "Invitation changed",
    "invitation.accepted": "Invitation accepted",
    "invitation.rejected": "Invitation declined",
    "invitation.revoked": "Invitation revoked",
    "invitation.resent": "Invitation resent",
    "api_key.created": "API key created",
    "api_key.revoked": "API key revoked",
    "user.created": "Person added (active)",
    "user.deleted": "Person erased",
    "scim_token.created": "SCIM token created",
    "scim_token.revoked": "SCIM token revoked",
    "scim.settings_updated": "SCIM settings changed",
    "scim.group_changed": "SCIM group changed",
    "scim.request": "SCIM request",
    "webhook_endpoint.created": "Webhook endpoint added",
    "webhook_endpoint.updated": "Webhook endpoint changed",
    "webhook_endpoint.deleted": "Webhook endpoint deleted",
    "webhook_endpoint.secret_rotated": "Webhook secret rotated",
    "webhook_delivery.retried": "Webhook delivery retried",
    "account.signed_in": "Signed in",
    "account.signed_out": "Signed out",
    "account.sessions_ended": "Sessions ended",
    "account.password_changed": "Password changed",
    "account.mfa_enrolled": "Two-step verification set up",
    "account.mfa_reset": "Two-step verification reset",
    "account.mfa_recovery_code_used": "Recovery code used",
    "account.mfa_recovery_codes_replaced": "Recovery codes replaced",
    "account.sso_linked": "Single sign-on linked",
    "clinic.sso_configured": "Single sign-on configured",
    "clinic.sign_in_policy_updated": "Sign-in rules changed",
}
# What the actor did, with {target} for whom or what it was about.
_SENTENCES = {
    "user.invited": "invited {target}",
    "user.updated": "changed the details of {target}",
    "user.access_revoked": "revoked the access of {target}",
    "user.reactivated": "restored the access of {target}",
    "invitation.updated": "changed the invitation of {target}",
    "invitation.accepted": "accepted their invitation",
    "invitation.rejected": "declined their invitation",
    "invitation.revoked": "revoked the invitation of {target}",
    "invitation.resent": "resent the invitation to {target}",
    "api_key.created": "created the API key {target}",
    "api_key.revoked": "revoked the API key {target}",
    "user.created": "added {target} (active at once, without an invitation)",
    "user.deleted": "erased {target} for good",
    "scim_token.created": "created a SCIM token",
    "scim_token.revoked": "revoked a SCIM token",
    "scim.settings_updated": "changed the SCIM provisioning settings",
    "scim.group_changed": "changed the SCIM group {target}",
    "scim.request": "made a SCIM request that changed nothing",
    "webhook_endpoint.created": "added a webhook endpoint",
    "webhook_endpoint.updated": "changed a webhook endpoint",
    "webhook_endpoint.deleted": "deleted a webhook endpoint",
    "webhook_endpoint.secret_rotated": "rotated the signing secret of a webhook endpoint",
    "webhook_delivery.retried": "retried a webhook delivery",
    "account.signed_in": "signed in",
    "account.signed_out": "signed out",
    "account.sessions_ended": "ended sessions of {target}",
    "account.password_changed": "changed the password of {target}",
    "account.mfa_enrolled": "set up two-step verification",
    "account.mfa_reset": "reset the two-step verification of {target}",
    "account.mfa_recovery_code_used": "signed in with a recovery code",
    "account.mfa_recovery_codes_replaced": "replaced their recovery codes",
    "account.sso_linked": "linked their account to the clinic's identity provider",
    "clinic.sso_configured": "configured single sign-on",
    "clinic.sign_in_policy_updated": "changed the clinic's sign-in rules",
}
FIELD_LABELS = {
    "firstName": "First name",
    "middleName": "Middle name",
    "lastName": "Last name",
    "suffix1": "Suffix",
    "suffix2": "Second suffix",
    "email": "Email",
    "phoneNumber": "Phone",
    "clinicRole": "Clinic role",
    "level": "Level",
    "canManageStudies": "Can manage studies",
    "hasDashboardAccess": "Dashboard access",
    "status": "Status",
    "expiry": "Invitation expires",
    "description": "Description",
    "revokedAt": "Revoked",
    "invitedSource": "Invited via",
    "deliveryStatus": "Email delivery",
}


def action_label(action: str) -> str:
    return ACTION_LABELS.get(action) or action.replace("_", " ").replace(".", ": ").capitalize()


@dataclass
class Party:
    """Someone or something an entry names: text, and a link when there is a page for it."""

    text: str
    href: str | None = None


@dataclass
class Change:
    label: str
    before: str  # "" when the value is new
    after: str


@dataclass
class Line:
    seq: int
    at: datetime
    who: Party
    sentence_before: str  # the sentence is who + sentence_before + target + sentence_after
    target: Party | None
    sentence_after: str
    changes: list[Change] = field(default_factory=list)


@dataclass
class Names:
    """What the page knows to name ids with: people, invitations (→ their person), keys."""

    people: dict[str, str]
    invitation_people: dict[str, str]
    key_descriptions: dict[str, str]


def _value(name: str, value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if name == "level":
        return LEVEL_LABELS.get(str(value), str(value))
    if name in ("expiry", "revokedAt") and isinstance(value, str):
        try:
            return datetime.fromisoformat(value).strftime("%d %b %Y, %H:%M UTC")
        except ValueError:
            return value
    if isinstance(value, str):
        return value.capitalize() if name in ("status", "deliveryStatus") else value
    return str(value)


def changes_of(changes: Any) -> list[Change]:
    if not isinstance(changes, dict):
        return []
    out = []
    for name, change in changes.items():
        if name.endswith(("Id", "Ids")):
            continue  # references to other records: the sentence names them; the CSV has them
        label = FIELD_LABELS.get(name, name)
        if isinstance(change, dict) and ("before" in change or "after" in change):
            before, after = change.get("before"), change.get("after")
            shown_before = "" if before is None else _value(name, before)
            out.append(Change(label, shown_before, _value(name, after)))
        else:
            out.append(Change(label, "", _value(name, change)))
    return out


def _person(names: Names, user_id: str | None) -> Party | None:
    if user_id and user_id in names.people:
        return Party(names.people[user_id], f"/users/{user_id}")
    return None


def who_of(entry: dict[str, Any], names: Names) -> Party:
    kind, actor_id = entry["actorType"], entry["actorId"]
    if kind == "user":
        return _person(names, actor_id) or Party("A former user")
    if kind == "api_key":
        description = names.key_descriptions.get(actor_id or "")
        return Party(f"The API key “{description}”" if description else "An API key", "/api-keys")
    if kind == "scim_token":
        return Party(f"The identity provider (SCIM token {actor_id})")
    if kind == "invitee":
        return Party("The invited person")
    return Party("The server's operator" if kind in ("operator", "cli") else "The system")


def target_of(entry: dict[str, Any], names: Names) -> Party | None:
    kind, target_id = entry["targetType"], entry["targetId"] or ""
    if kind == "user":
        return _person(names, target_id) or Party("a person no longer in the clinic")
    if kind == "invitation":
        return _person(names, names.invitation_people.get(target_id)) or Party("a person")
    if kind == "api_key":
        description = names.key_descriptions.get(target_id)
        return Party(f"“{description}”" if description else "(removed key)", "/api-keys")
    return Party(target_id) if target_id else None


def line_of(entry: dict[str, Any], names: Names) -> Line:
    fallback = action_label(entry["action"]).lower() + " ({target})"
    sentence = _SENTENCES.get(entry["action"], fallback)
    before, named, after = sentence.partition("{target}")
    return Line(
        seq=entry["seq"],
        at=datetime.fromisoformat(entry["createdAt"].replace("Z", "+00:00")),
        who=who_of(entry, names),
        sentence_before=" " + before,
        target=target_of(entry, names) if named else None,
        sentence_after=after,
        changes=changes_of(entry["changes"]),
    )
