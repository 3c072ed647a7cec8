"""The `avara` client's users and invitations methods against the real server."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from avara import (
    AsyncAvara,
    Avara,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from support import Clinic, Server, invite_body
from users.rawsql import accept_invitation, expire_invitation


def _snake(body: dict) -> dict:
    names = {
        "canManageStudies": "can_manage_studies",
        "clinicRole": "clinic_role",
        "firstName": "first_name",
        "hasDashboardAccess": "has_dashboard_access",
        "lastName": "last_name",
        "middleName": "middle_name",
        "phoneNumber": "phone_number",
    }
    return {names.get(k, k): v for k, v in body.items()}


@pytest.fixture(scope="module")
def own_clinic(server: Server) -> Clinic:
    return server.create_clinic("Client Clinic")


@pytest.fixture(scope="module")
def client(server: Server, own_clinic: Clinic) -> Avara:
    return Avara(base_url=server.base_url, api_key=own_clinic.key, max_retries=0)


def test_list_iterates_across_pages_with_filters(client: Avara) -> None:
    invited = [
        client.viewer.users.invite(**_snake(invite_body(lastName=f"Pager{i}"))) for i in range(7)
    ]
    page = client.viewer.users.list(limit=3, last_name="pager")
    assert len(page.users) == 3 and page.has_more and page.cursor
    assert [u.user_id for u in page] == [u.user_id for u in reversed(invited)]
    assert len(list(page.iter_pages())) == 3
    [one] = client.viewer.users.list(
        email=invited[0].email.upper(), status="invited", level="member"
    )
    assert one.user_id == invited[0].user_id and one.status == "invited"
    with pytest.raises(UnprocessableEntityError) as bad:
        client.viewer.users.list(cursor="forged")
    assert bad.value.code == "invalid_cursor"


def test_retrieve_update_revoke_reactivate(server: Server, client: Avara) -> None:
    user = client.viewer.users.invite(**_snake(invite_body(middleName="Q")))
    assert client.viewer.users.retrieve(user.user_id).email == user.email
    updated = client.viewer.users.update(
        user.user_id, first_name="Zoe", middle_name=None, level="admin"
    )
    assert (updated.first_name, updated.middle_name, updated.level) == ("Zoe", None, "admin")
    with pytest.raises(UnprocessableEntityError) as bad:
        client.viewer.users.update(user.user_id, has_dashboard_access=False)
    assert [e.field for e in bad.value.errors] == ["hasDashboardAccess"]
    with pytest.raises(NotFoundError):
        client.viewer.users.retrieve("usr_" + "0" * 32)
    accept_invitation(server, user.user_id)
    revoked = client.viewer.users.revoke_access(user_id=user.user_id)
    assert revoked.success is True
    with pytest.raises(ConflictError):
        client.viewer.users.revoke_access(user_id=user.user_id)
    assert client.viewer.users.reactivate(user_id=user.user_id).success is True
    assert client.viewer.users.retrieve(user.user_id).status == "active"
    with pytest.raises(ConflictError):
        client.viewer.users.reactivate(user_id=user.user_id)


def test_owners_are_refused(server: Server, own_clinic: Clinic, client: Avara) -> None:
    owner = (
        server.cli(
            "owners",
            "invite",
            "--clinic",
            own_clinic.id,
            "--email",
            invite_body()["email"],
            "--first-name",
            "O",
            "--last-name",
            "Wner",
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    with pytest.raises(PermissionDeniedError):
        client.viewer.users.update(owner, first_name="X")
    with pytest.raises(PermissionDeniedError):
        client.viewer.users.revoke_access(user_id=owner)


def test_invitations_list_retrieve_update_resend_revoke(server: Server, client: Avara) -> None:
    user = client.viewer.users.invite(**_snake(invite_body(lastName="Invitee")))
    [invitation] = client.viewer.users.invitations.list(user_id=user.user_id)
    assert invitation.user_id == user.user_id and invitation.status == "sent"
    today = dt.datetime.now(dt.UTC).date()
    found = client.viewer.users.invitations.list(
        status=["sent", "revoked"],
        expired="not-expired",
        start_date=today,
        end_date=today.isoformat(),
    )
    assert invitation.invitation_id in {i.invitation_id for i in found}
    got = client.viewer.users.invitations.retrieve(invitation.invitation_id)
    assert got.email == user.email
    changed = client.viewer.users.invitations.update(invitation.invitation_id, last_name="Renamed")
    assert changed.last_name == "Renamed"
    with pytest.raises(RateLimitError):
        client.viewer.users.invitations.resend(invitation.invitation_id)
    expire_invitation(server, invitation.invitation_id)
    assert [
        i.invitation_id
        for i in client.viewer.users.invitations.list(expired="expired", user_id=user.user_id)
    ] == [invitation.invitation_id]
    resent = client.viewer.users.invitations.resend(invitation.invitation_id)
    assert resent.expiry is not None and resent.expiry > dt.datetime.now(dt.UTC) + dt.timedelta(
        days=6
    )
    done = client.viewer.users.invitations.revoke(user_id=user.user_id)
    assert done.success is True
    assert client.viewer.users.invitations.retrieve(invitation.invitation_id).status == "revoked"
    with pytest.raises(ConflictError):
        client.viewer.users.invitations.revoke(invitation_id=invitation.invitation_id)


def test_the_async_client_pages_too(server: Server, client: Avara) -> None:
    async def walk() -> list[str]:
        async with AsyncAvara(base_url=server.base_url, api_key=client.api_key) as aclient:
            page = await aclient.viewer.users.list(limit=2, last_name="pager")
            return [u.user_id async for u in page]

    ids = asyncio.run(walk())
    assert ids == [u.user_id for u in client.viewer.users.list(last_name="pager", limit=100)]
