"""What provisioning does to people: the invitation email (or none, by clinic setting), the
clinic's defaults, active ↔ access, erasure on DELETE, and the audit trail of every call."""

from __future__ import annotations

import json

from scim.scim_support import VIEWER, ScimClinic, audit_rows, scim_clinic, user_doc
from support import Server, SmtpSink


def _outbox(server: Server, address: str) -> int:
    rows = server.sql(
        f"SELECT count(*) FROM email_outbox WHERE lower(recipient) = '{address.lower()}'"
    )
    return int(rows[0][0])


def _status(server: Server, user_id: str) -> str:
    [(status,)] = server.sql(f"SELECT status FROM users WHERE id = '{user_id}'")
    return str(status)


def test_by_default_people_are_invited_by_email(
    server: Server, smtp_sink: SmtpSink, scim: ScimClinic
) -> None:
    user = scim.create()
    address = user["emails"][0]["value"]
    [mail] = smtp_sink.wait_for(address)
    assert "invitations/accept?token=" in mail.part("plain")
    assert user[VIEWER]["status"] == "invited" and user["active"] is True
    # The API shows the person as provisioned through the API (the contract's enum).
    api_user = scim.clinic.client.get(f"/v1/viewer/users/{user['id']}").json()
    assert api_user["invitedSource"] == "api" and api_user["status"] == "invited"
    # Deactivating revokes the invitation; reactivating someone who never joined re-invites.
    off = scim.patch(user["id"], {"op": "replace", "path": "active", "value": False})
    assert off.json()[VIEWER]["status"] == "revoked"
    on = scim.patch(user["id"], {"op": "replace", "path": "active", "value": True})
    assert on.json()[VIEWER]["status"] == "invited" and on.json()["active"] is True
    assert len(smtp_sink.wait_for(address, count=2)) == 2


def test_clinic_setting_makes_people_active_without_email(server: Server) -> None:
    place = scim_clinic(server, "SSO Clinic")
    shown = server.cli(
        "scim", "configure", "--clinic", place.id, "--activate-without-email",
        "--default-clinic-role", "Radiologist", "--default-level", "admin",
        "--default-dashboard-access", "--default-can-manage-studies",
    ).stdout  # fmt: skip
    assert "activate_without_email=True" in shown and "level=admin" in shown
    user = place.create(**{VIEWER: None})
    assert user[VIEWER] | {"status": "active"} == {
        "clinicRole": "Radiologist",
        "level": "admin",
        "canManageStudies": True,
        "hasDashboardAccess": True,
        "status": "active",
        "invitedSource": "api",
        "scimProvisioned": True,
    }
    assert user[VIEWER]["status"] == "active"
    # What the IdP sends wins over the defaults.
    chosen = place.create(**{VIEWER: {"level": "member", "clinicRole": "Surgeon"}})
    assert chosen[VIEWER]["level"] == "member" and chosen[VIEWER]["clinicRole"] == "Surgeon"
    address = user["emails"][0]["value"]
    off = place.patch(user["id"], {"op": "replace", "path": "active", "value": "False"})
    assert off.json()["active"] is False
    # Revoking ends the person's sessions at once: tests/sso/test_sessions.py shows it for
    # every way in (the change's event ends them in its transaction).
    assert _status(server, user["id"]) == "revoked"
    on = place.patch(user["id"], {"op": "replace", "path": "active", "value": "True"})
    assert on.json()[VIEWER]["status"] == "active"
    assert _status(server, user["id"]) == "active"
    assert _outbox(server, address) == 0
    actions = [row[2] for row in audit_rows(server, place.id) if row[3] == user["id"]]
    assert actions == ["user.created", "user.access_revoked", "user.reactivated"]


def test_invalid_settings_are_refused(server: Server, scim: ScimClinic) -> None:
    result = server.cli(
        "scim", "configure", "--clinic", scim.id, "--default-level", "admin",
        "--default-no-dashboard-access", check=False,
    )  # fmt: skip
    assert result.returncode == 1 and "defaultDashboardAccess" in result.stderr
    result = server.cli(
        "scim", "configure", "--clinic", scim.id, "--default-clinic-role", "Wizard", check=False
    )
    assert result.returncode == 1 and "defaultClinicRole" in result.stderr


def test_created_inactive_means_revoked_and_no_email(server: Server, scim: ScimClinic) -> None:
    user = scim.create(active=False)
    assert user["active"] is False and user[VIEWER]["status"] == "revoked"
    assert _outbox(server, user["emails"][0]["value"]) == 0


def test_email_falls_back_to_user_name_and_prefers_primary(scim: ScimClinic) -> None:
    okta = scim.create(emails=None)
    assert okta["emails"][0]["value"] == okta["userName"]
    two = scim.create(
        login="jdoe-" + okta["id"][-6:],
        emails=[
            {"value": f"home.{okta['id'][-6:]}@x.example", "type": "home"},
            {"value": f"work.{okta['id'][-6:]}@x.example", "type": "work"},
            {"value": f"main.{okta['id'][-6:]}@x.example", "type": "other", "primary": "true"},
        ],
    )
    assert two["emails"][0]["value"].startswith("main.")
    work = scim.create(
        login="w-" + okta["id"][-6:],
        emails=[
            {"value": f"home2.{okta['id'][-6:]}@x.example", "type": "home"},
            {"value": f"work2.{okta['id'][-6:]}@x.example", "type": "WORK"},
        ],
    )
    assert work["emails"][0]["value"].startswith("work2.")


def test_delete_erases_the_person_and_the_audit_keeps_only_that_it_happened(
    server: Server, scim: ScimClinic
) -> None:
    doc = user_doc(
        name={"givenName": "Erin", "familyName": "Erasable", "middleName": "Zed"},
        phoneNumbers=[{"type": "work", "value": "4155550199"}],
    )
    user = scim.client.post("/Users", json=doc).json()
    uid, address = user["id"], user["emails"][0]["value"]
    assert scim.client.delete(f"/Users/{uid}").status_code == 204
    for table, column in (
        ("users", "id"),
        ("invitations", "user_id"),
        ("scim_users", "user_id"),
        ("password_resets", "user_id"),
    ):
        assert server.sql(f"SELECT count(*) FROM {table} WHERE {column} = '{uid}'") == [(0,)]
    assert _outbox(server, address) == 0
    [deleted] = [row for row in audit_rows(server, scim.id) if row[2] == "user.deleted"]
    actor_type, actor_id, _, target, changes = deleted
    assert (actor_type, actor_id, target) == ("scim_token", scim.token_id, uid)
    recorded = json.loads(changes)
    assert "email" in recorded["erasedFields"] and "phoneNumber" in recorded["erasedFields"]
    for value in (address, "Erin", "Erasable", "Zed", "4155550199", doc["externalId"]):
        assert value not in changes
    assert server.cli("audit", "verify", "--clinic", scim.id).returncode == 0
    # Gone for good: a second DELETE is a 404, and the person can be provisioned anew.
    assert scim.client.delete(f"/Users/{uid}").status_code == 404
    again = scim.client.post("/Users", json=doc)
    assert again.status_code == 201 and again.json()["id"] != uid


def test_every_call_is_on_the_audit_trail_with_the_token_as_actor(server: Server) -> None:
    place = scim_clinic(server, "Audited Clinic")
    user = place.create()
    place.client.get("/Users")
    place.client.get(f"/Users/{user['id']}")
    place.client.get("/ServiceProviderConfig")
    place.client.post("/Users", json=user_doc(userName=None))  # refused: 400
    place.patch(user["id"], {"op": "add", "path": "title", "value": "ignored"})  # no change
    place.patch(user["id"], {"op": "replace", "path": "name.familyName", "value": "Byron"})
    rows = audit_rows(server, place.id)
    scim_rows = [r for r in rows if r[0] == "scim_token"]
    assert {r[1] for r in scim_rows} == {place.token_id}
    actions = [r[2] for r in scim_rows]
    assert actions == [
        "user.invited",
        "scim.request",
        "scim.request",
        "scim.request",
        "scim.request",
        "scim.request",
        "user.updated",
    ]
    calls = [json.loads(r[4]) for r in scim_rows if r[2] == "scim.request"]
    assert [(c["method"], c["status"]) for c in calls] == [
        ("GET", 200),
        ("GET", 200),
        ("GET", 200),
        ("POST", 400),
        ("PATCH", 200),
    ]
    assert calls[0]["results"] == 1 and calls[3]["scimType"] == "invalidValue"
