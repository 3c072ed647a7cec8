"""client.webhooks.unwrap / unsafe_unwrap: Standard Webhooks verification and typed events.

Events are signed here with the `standardwebhooks` package itself (the scheme's reference
implementation); the server's real deliveries are checked in server/tests/webhooks."""

from __future__ import annotations

import base64
import json
import os
import sys
from datetime import datetime, timedelta, timezone

import pytest
import standardwebhooks

from avara import AsyncAvara, Avara, AvaraError
from avara.types.webhook_event import (
    InvitationWebhookEvent,
    UnknownWebhookEvent,
    UserWebhookEvent,
    WebhookTestEvent,
)

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
OTHER = "whsec_" + base64.b64encode(os.urandom(32)).decode()

USER = {
    "userId": "usr_" + "a" * 32,
    "email": "dr.johnson@hospital.org",
    "firstName": "Sarah",
    "middleName": None,
    "lastName": "Johnson",
    "suffix1": None,
    "suffix2": None,
    "phoneNumber": None,
    "clinicRole": "Radiologist",
    "level": "member",
    "canManageStudies": True,
    "hasDashboardAccess": True,
    "invitedSource": "api",
    "createdAt": "2026-11-29T10:00:00.000Z",
    "lastLoginAt": None,
    "status": "invited",
}
INVITATION = {
    **{k: v for k, v in USER.items() if k not in ("createdAt", "lastLoginAt", "status")},
    "invitationId": "inv_" + "b" * 32,
    "clinicId": "6f1c2a1e-0000-4000-8000-000000000000",
    "inviterId": None,
    "invitedByApiKeyId": "7a1c2a1e-0000-4000-8000-000000000000",
    "status": "rejected",
    "expiry": "2026-12-06T10:00:00.000Z",
    "createdAt": "2026-11-29T10:00:00.000Z",
    "updatedAt": "2026-11-29T11:00:00.000Z",
    "deliveryStatus": "sent",
}


def signed(
    event: dict[str, object], *secrets: str, at: datetime | None = None
) -> tuple[str, dict[str, str]]:
    body = json.dumps(event)
    when = at or datetime.now(timezone.utc)
    signatures = [
        standardwebhooks.Webhook(s).sign(str(event["id"]), when, body) for s in secrets or (SECRET,)
    ]
    return body, {
        "webhook-id": str(event["id"]),
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def event(kind: str, data: dict[str, object]) -> dict[str, object]:
    return {"id": "whe_" + "c" * 32, "type": kind, "createdAt": USER["createdAt"], "data": data}


@pytest.fixture
def client() -> Avara:
    return Avara(api_key="avk_test")


def test_unwrap_verifies_and_types_a_user_event(client: Avara) -> None:
    body, headers = signed(event("user.invited", USER))
    unwrapped = client.webhooks.unwrap(body, headers=headers, key=SECRET)
    assert isinstance(unwrapped, UserWebhookEvent)
    assert unwrapped.type == "user.invited" and unwrapped.id == "whe_" + "c" * 32
    assert unwrapped.data.user_id == USER["userId"] and unwrapped.data.clinic_role == "Radiologist"


def test_unwrap_types_an_invitation_event_and_keeps_new_fields(client: Avara) -> None:
    body, headers = signed(event("invitation.declined", INVITATION))
    unwrapped = client.webhooks.unwrap(body.encode(), headers=headers, key=SECRET)
    assert isinstance(unwrapped, InvitationWebhookEvent)
    assert unwrapped.data.status == "rejected"
    assert unwrapped.data.model_dump()["deliveryStatus"] == "sent"


def test_the_key_may_come_from_the_client_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body, headers = signed(event("user.updated", USER))
    assert Avara(api_key="k", webhook_key=SECRET).webhooks.unwrap(body, headers=headers).id
    monkeypatch.setenv("AVARA_WEBHOOK_KEY", SECRET)
    assert Avara(api_key="k").webhooks.unwrap(body, headers=headers).type == "user.updated"
    monkeypatch.delenv("AVARA_WEBHOOK_KEY")
    with pytest.raises(ValueError, match="without a key"):
        Avara(api_key="k").webhooks.unwrap(body, headers=headers)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, headers: (body.replace("Sarah", "Mallory"), headers),
        lambda body, headers: (body, {**headers, "webhook-id": "whe_" + "d" * 32}),
        lambda body, headers: (
            body,
            {k: v for k, v in headers.items() if k != "webhook-signature"},
        ),
    ],
    ids=["body changed", "id changed", "no signature"],
)
def test_a_tampered_event_is_refused(client: Avara, tamper: object) -> None:
    body, headers = tamper(*signed(event("user.invited", USER)))  # type: ignore[operator]
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        client.webhooks.unwrap(body, headers=headers, key=SECRET)


def test_a_wrong_key_or_an_old_timestamp_is_refused(client: Avara) -> None:
    body, headers = signed(event("user.invited", USER))
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        client.webhooks.unwrap(body, headers=headers, key=OTHER)
    old = datetime.now(timezone.utc) - timedelta(minutes=10)
    body, headers = signed(event("user.invited", USER), at=old)
    with pytest.raises(standardwebhooks.WebhookVerificationError, match="too old"):
        client.webhooks.unwrap(body, headers=headers, key=SECRET)


def test_during_a_rotation_either_secret_verifies(client: Avara) -> None:
    body, headers = signed(event("user.invited", USER), OTHER, SECRET)
    assert " " in headers["webhook-signature"]
    for key in (SECRET, OTHER):
        assert client.webhooks.unwrap(body, headers=headers, key=key).type == "user.invited"


def test_unsafe_unwrap_parses_without_verifying() -> None:
    client = AsyncAvara(api_key="avk_test")
    parsed = client.webhooks.unsafe_unwrap(json.dumps(event("invitation.expired", INVITATION)))
    assert isinstance(parsed, InvitationWebhookEvent) and parsed.type == "invitation.expired"
    test = client.webhooks.unsafe_unwrap(
        json.dumps(event("webhook.test", {"endpointId": "whep_" + "e" * 32, "message": "hi"}))
    )
    assert isinstance(test, WebhookTestEvent) and test.data.endpoint_id.startswith("whep_")


def test_async_client_unwraps_too() -> None:
    body, headers = signed(event("user.reactivated", USER))
    unwrapped = AsyncAvara(api_key="k").webhooks.unwrap(body, headers=headers, key=SECRET)
    assert isinstance(unwrapped, UserWebhookEvent)


def test_an_event_type_this_client_does_not_know_still_parses(client: Avara) -> None:
    body, headers = signed(event("user.merged", {"userId": "usr_1", "into": "usr_2"}))
    unwrapped = client.webhooks.unwrap(body, headers=headers, key=SECRET)
    assert isinstance(unwrapped, UnknownWebhookEvent)
    assert unwrapped.type == "user.merged" and unwrapped.data["into"] == "usr_2"


def test_without_the_standardwebhooks_package_the_error_says_what_to_install(
    client: Avara, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "standardwebhooks", None)
    body, headers = signed(event("user.invited", USER))
    with pytest.raises(AvaraError, match=r"avara\[webhooks\]"):
        client.webhooks.unwrap(body, headers=headers, key=SECRET)
