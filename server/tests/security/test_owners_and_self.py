"""Who may change whom, enforced by the users service whichever way the change comes: forms
posted straight to the dashboard (with a valid CSRF token, as an attacker with a session
would), the API, the command line. No change leaves a clinic without an active owner; owners
are changed only from the command line; nobody changes their own level or access."""

from __future__ import annotations

from dashboard.browser_support import csrf_of, login_over_http, onboard_owner
from security.people import edit_form, onboard
from support import Server, SmtpSink


def _user(server: Server, user_id: str) -> tuple[str, str, bool]:
    [row] = server.sql(
        f"SELECT level, status, has_dashboard_access FROM users WHERE id = '{user_id}'"
    )
    return row[0], row[1], bool(row[2])


def test_an_owner_cannot_demote_or_revoke_another_owner_from_the_dashboard(
    server: Server, smtp_sink: SmtpSink
) -> None:
    clinic = server.create_clinic("Two Owners Clinic")
    first = onboard_owner(server, smtp_sink, clinic.id)
    second = onboard_owner(server, smtp_sink, clinic.id, first="Second")
    session = login_over_http(server, first.email)

    def post(path: str, data: dict[str, str]) -> int:
        token = csrf_of(session.get("/users"))
        return session.post(path, data={**data, "csrf_token": token}).status_code

    demote = edit_form(level="member", hasDashboardAccess="")
    assert post(f"/users/{second.user_id}/edit", demote) == 403
    assert post(f"/users/{second.user_id}/revoke", {}) == 403
    assert _user(server, second.user_id) == ("owner", "active", True)
    # Not on themselves either: an owner's own level and access are not theirs to change.
    assert post(f"/users/{first.user_id}/edit", edit_form(level="admin")) == 403
    assert post(f"/users/{first.user_id}/revoke", {}) == 409
    assert _user(server, first.user_id) == ("owner", "active", True)
    events = server.sql(
        f"SELECT count(*) FROM audit_log WHERE target_id IN ('{first.user_id}', "
        f"'{second.user_id}') AND action NOT IN ('user.invited', 'invitation.accepted', "
        "'account.signed_in')"
    )
    assert events == [(0,)]


def test_an_admin_cannot_change_owners_or_their_own_level_access_or_revoke_themselves(
    server: Server, smtp_sink: SmtpSink
) -> None:
    clinic = server.create_clinic("Admin Self Clinic")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    admin = onboard(server, smtp_sink, clinic, "admin")
    member = onboard(server, smtp_sink, clinic, "member")

    assert admin.post_form(f"/users/{owner.user_id}/edit", edit_form()).status_code == 403
    assert admin.post_form(f"/users/{owner.user_id}/revoke", {}).status_code == 403
    assert _user(server, owner.user_id) == ("owner", "active", True)

    # Their own level, dashboard access or study rights: refused, naming the field.
    for change in (
        {"level": "member"},
        {"hasDashboardAccess": "", "level": "member"},
        {"canManageStudies": ""},
    ):
        response = admin.post_form(
            f"/users/{admin.user_id}/edit", edit_form(**{"level": "admin", **change})
        )
        assert response.status_code == 403, response.text
        assert "cannot be changed on yourself" in response.text
    assert _user(server, admin.user_id) == ("admin", "active", True)
    assert admin.post_form(f"/users/{admin.user_id}/revoke", {}).status_code == 409
    assert _user(server, admin.user_id) == ("admin", "active", True)

    # Their own name they may correct, with level and access sent unchanged.
    fixed = admin.post_form(
        f"/users/{admin.user_id}/edit", edit_form(level="admin", firstName="Corrected")
    )
    assert fixed.status_code == 303
    [(first_name,)] = server.sql(f"SELECT first_name FROM users WHERE id = '{admin.user_id}'")
    assert first_name == "Corrected"

    # A member posting the admin forms is refused.
    assert member.post_form(f"/users/{admin.user_id}/revoke", {}).status_code == 403
    assert member.post_form(
        f"/users/{member.user_id}/edit", edit_form(level="admin")
    ).status_code == 403
    assert _user(server, member.user_id) == ("member", "active", True)


def test_owners_are_refused_through_the_api(server: Server, smtp_sink: SmtpSink) -> None:
    clinic = server.create_clinic("API Owner Clinic")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    patch = clinic.client.patch(f"/v1/viewer/users/{owner.user_id}", json={"level": "member"})
    assert patch.status_code == 403 and patch.json()["code"] == "owner_protected"
    for action in ("revoke-access", "reactivate"):
        response = clinic.client.post(f"/v1/viewer/users/{action}", json={"userId": owner.user_id})
        assert response.status_code == 403, response.text
    assert _user(server, owner.user_id) == ("owner", "active", True)


def test_the_command_line_changes_owners_but_never_removes_the_last_one(
    server: Server, smtp_sink: SmtpSink
) -> None:
    clinic = server.create_clinic("Last Owner Clinic")
    first = onboard_owner(server, smtp_sink, clinic.id)
    args = ("--clinic", clinic.id, "--user", first.user_id)
    refused = server.cli("owners", "revoke", *args, check=False)
    assert refused.returncode == 1
    assert "only active owner" in refused.stderr
    assert _user(server, first.user_id) == ("owner", "active", True)

    second = onboard_owner(server, smtp_sink, clinic.id, first="Second")
    server.cli("owners", "revoke", *args)
    assert _user(server, first.user_id) == ("owner", "revoked", True)
    # Now the second owner is the only one left.
    last = server.cli(
        "owners", "revoke", "--clinic", clinic.id, "--user", second.user_id, check=False
    )
    assert last.returncode == 1 and "only active owner" in last.stderr
    server.cli("owners", "reactivate", *args)
    assert _user(server, first.user_id) == ("owner", "active", True)
    [(actor_kind,)] = server.sql(
        f"SELECT actor_type FROM audit_log WHERE target_id = '{first.user_id}' "
        "AND action = 'user.access_revoked'"
    )
    assert actor_kind == "cli"
