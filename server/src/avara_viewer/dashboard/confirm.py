"""What the dashboard says before a destructive action: one wording per action, shown in the
JavaScript dialog and on the confirmation page that works without JavaScript."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..ids import API_KEY_PREFIX
from .web import env


@dataclass(frozen=True)
class Confirmation:
    key: str  # unique on a page: names the dialog
    title: str
    consequences: tuple[str, ...]
    button: str  # the confirming button, which POSTs to `action`
    action: str
    cancel: str  # where "Cancel" goes on the confirmation page
    trigger: str  # the label of the button that asks
    fields: tuple[tuple[str, str], ...] = ()  # hidden form fields the POST carries


BULK_ACTIONS = ("revoke", "resend")


def key_prefix(key: Any) -> str:
    """The start of a key's secret (its public look-up part), to tell keys apart."""
    return f"{API_KEY_PREFIX}{key['lookup']}…"


def revoke_access(user: Any) -> Confirmation:
    name = env.filters["full_name"](user)
    return Confirmation(
        key=f"revoke-access-{user['id']}",
        title=f"Revoke {name}'s access?",
        consequences=(
            f"{name} can no longer log in, and any session they have open ends at once.",
            "If their invitation is still waiting, its link stops working.",
            "They stay in the directory and the audit log; you can reactivate them later.",
        ),
        button="Yes, revoke access",
        action=f"/users/{user['id']}/revoke",
        cancel=f"/users/{user['id']}",
        trigger="Revoke access",
    )


def revoke_invitation(invitation: Any) -> Confirmation:
    name = env.filters["full_name"](invitation)
    return Confirmation(
        key=f"revoke-invitation-{invitation['id']}",
        title=f"Revoke the invitation to {name}?",
        consequences=(
            f"The link in the email sent to {invitation['email']} stops working at once.",
            f"{name} shows as Revoked in the directory. To invite them again later, open "
            "their page and choose Reactivate: they get a new invitation.",
        ),
        button="Yes, revoke the invitation",
        action=f"/invitations/{invitation['id']}/revoke",
        cancel="/invitations",
        trigger="Revoke",
    )


def revoke_api_key(key: Any) -> Confirmation:
    description = key["description"] or "(no description)"
    return Confirmation(
        key=f"revoke-key-{key['id']}",
        title=f"Revoke the API key “{description}”?",
        consequences=(
            f"Every request made with this key ({key_prefix(key)}) is refused from now on: "
            "the integration that uses it stops working.",
            "This cannot be undone. To reconnect the integration, create a new key and put it "
            "in the integration's settings.",
        ),
        button="Yes, revoke the key",
        action=f"/api-keys/{key['id']}/revoke",
        cancel="/api-keys",
        trigger="Revoke",
    )


def _people(n: int) -> str:
    return f"{n} {'person' if n == 1 else 'people'}"


def bulk(action: str, users: list[Any], chosen: list[Any]) -> Confirmation:
    """The directory's action on the ticked people (`chosen`); `users` are those of them the
    flow will not refuse. Every chosen person is posted: the flow judges each one."""
    fields = (("action", action), *(("user", str(u["id"])) for u in chosen))
    if action == "revoke":
        return Confirmation(
            key="bulk-revoke",
            title=f"Revoke the access of {_people(len(users))}?",
            consequences=(
                "They can no longer log in, and any session they have open ends at once.",
                "Invitations still waiting for them stop working.",
                "They stay in the directory and the audit log; you can reactivate each later.",
            ),
            button="Yes, revoke access",
            action="/users/selected",
            cancel="/users",
            trigger="Revoke access",
            fields=fields,
        )
    return Confirmation(
        key="bulk-resend",
        title=f"Resend the invitation to {_people(len(users))}?",
        consequences=(
            "Each gets a new invitation email with a new link and a new expiry.",
            "The links in their earlier invitation emails stop working.",
        ),
        button="Yes, resend the invitations",
        action="/users/selected",
        cancel="/users",
        trigger="Resend invitation",
        fields=fields,
    )


def bulk_outcome(action: str, done: int, refused: list[tuple[Any, str]]) -> str:
    """What happened, e.g. "3 people's access revoked; 1 refused: Olivia Okafor (the clinic's
    owner)"."""
    if action == "revoke":
        text = f"{_people(done)}'s access revoked" if done else "No one's access was revoked"
    else:
        text = f"Invitation resent to {_people(done)}" if done else "No invitation was resent"
    if refused:
        names = ", ".join(f"{env.filters['full_name'](row)} ({why})" for row, why in refused)
        text += f"; {len(refused)} refused: {names}"
    return text + "."


env.globals.update(
    confirm_revoke_access=revoke_access,
    confirm_revoke_invitation=revoke_invitation,
    confirm_revoke_api_key=revoke_api_key,
)
env.filters["key_prefix"] = key_prefix
