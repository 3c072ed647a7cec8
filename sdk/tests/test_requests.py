"""Every method's request on the wire and its typed result, identical for Avara and AsyncAvara."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from avara_fakes import INVITATION, USER, FakeAPI, invitation, user

from avara import AsyncAvara, Avara
from avara.pagination import AsyncCursorPage, SyncCursorPage
from avara.types.viewer import Invitation, SuccessResponse, User, UserInviteResponse

SUCCESS = {"success": True, "message": "Access revoked."}


@dataclass
class Case:
    call: Callable[[Any], Any]
    method: str
    path: str
    response: Any
    result_type: type
    body: Any = None
    query: dict[str, str] = field(default_factory=dict)
    status: int = 200


CASES = {
    "users.invite required only": Case(
        lambda c: c.viewer.users.invite(
            can_manage_studies=True,
            clinic_role="Radiologist",
            email="dr.johnson@hospital.org",
            first_name="Sarah",
            has_dashboard_access=True,
            last_name="Johnson",
            level="member",
        ),
        "POST",
        "/v1/viewer/users",
        USER,
        UserInviteResponse,
        status=201,
        body={
            "canManageStudies": True,
            "clinicRole": "Radiologist",
            "email": "dr.johnson@hospital.org",
            "firstName": "Sarah",
            "hasDashboardAccess": True,
            "lastName": "Johnson",
            "level": "member",
        },
    ),
    "users.invite every field": Case(
        lambda c: c.viewer.users.invite(
            can_manage_studies=False,
            clinic_role="PACS Administrator",
            email="a@b.org",
            first_name="Ann",
            has_dashboard_access=True,
            last_name="Lee",
            level="admin",
            middle_name="Marie",
            phone_number="5551234567",
            suffix1="MD",
            suffix2="FACR",
        ),
        "POST",
        "/v1/viewer/users",
        USER,
        UserInviteResponse,
        status=201,
        body={
            "canManageStudies": False,
            "clinicRole": "PACS Administrator",
            "email": "a@b.org",
            "firstName": "Ann",
            "hasDashboardAccess": True,
            "lastName": "Lee",
            "level": "admin",
            "middleName": "Marie",
            "phoneNumber": "5551234567",
            "suffix1": "MD",
            "suffix2": "FACR",
        },
    ),
    "users.list no filters": Case(
        lambda c: c.viewer.users.list(),
        "GET",
        "/v1/viewer/users",
        {"users": [USER], "cursor": None, "hasMore": False},
        SyncCursorPage,
    ),
    "users.list every filter": Case(
        lambda c: c.viewer.users.list(
            cursor="c1",
            limit=5,
            email="x@y.org",
            first_name="Sa",
            last_name="Jo",
            level="owner",
            invited_source="dashboard",
            status="active",
        ),
        "GET",
        "/v1/viewer/users",
        {"users": [USER], "cursor": None, "hasMore": False},
        SyncCursorPage,
        query={
            "cursor": "c1",
            "limit": "5",
            "email": "x@y.org",
            "firstName": "Sa",
            "lastName": "Jo",
            "level": "owner",
            "invitedSource": "dashboard",
            "status": "active",
        },
    ),
    "users.retrieve": Case(
        lambda c: c.viewer.users.retrieve("usr_1234567890abcdef1234567890abcdef"),
        "GET",
        "/v1/viewer/users/usr_1234567890abcdef1234567890abcdef",
        USER,
        User,
    ),
    "users.update sends given fields, None as null": Case(
        lambda c: c.viewer.users.update(
            "usr_1",
            first_name="Sally",
            middle_name=None,
            phone_number=None,
            level="admin",
            has_dashboard_access=True,
        ),
        "PATCH",
        "/v1/viewer/users/usr_1",
        user(firstName="Sally", level="admin"),
        User,
        body={
            "firstName": "Sally",
            "middleName": None,
            "phoneNumber": None,
            "level": "admin",
            "hasDashboardAccess": True,
        },
    ),
    "users.revoke_access": Case(
        lambda c: c.viewer.users.revoke_access(user_id="usr_1"),
        "POST",
        "/v1/viewer/users/revoke-access",
        SUCCESS,
        SuccessResponse,
        body={"userId": "usr_1"},
    ),
    "users.reactivate": Case(
        lambda c: c.viewer.users.reactivate(user_id="usr_1"),
        "POST",
        "/v1/viewer/users/reactivate",
        SUCCESS,
        SuccessResponse,
        body={"userId": "usr_1"},
    ),
    "invitations.list every filter": Case(
        lambda c: c.viewer.users.invitations.list(
            cursor="c2",
            limit=100,
            status=["sent", "revoked"],
            expired="not-expired",
            start_date=dt.date(2024, 1, 1),
            end_date="2024-01-31",
            user_id="usr_1",
        ),
        "GET",
        "/v1/viewer/users/invitations",
        {"invitations": [INVITATION], "cursor": None, "hasMore": False},
        SyncCursorPage,
        query={
            "cursor": "c2",
            "limit": "100",
            "status": "sent,revoked",
            "expired": "not-expired",
            "startDate": "2024-01-01",
            "endDate": "2024-01-31",
            "userId": "usr_1",
        },
    ),
    "invitations.list one status": Case(
        lambda c: c.viewer.users.invitations.list(status="accepted"),
        "GET",
        "/v1/viewer/users/invitations",
        {"invitations": [], "cursor": None, "hasMore": False},
        SyncCursorPage,
        query={"status": "accepted"},
    ),
    "invitations.retrieve": Case(
        lambda c: c.viewer.users.invitations.retrieve("inv_1"),
        "GET",
        "/v1/viewer/users/invitations/inv_1",
        INVITATION,
        Invitation,
    ),
    "invitations.update": Case(
        lambda c: c.viewer.users.invitations.update(
            "inv_1", clinic_role="Other", suffix1=None, can_manage_studies=False
        ),
        "PATCH",
        "/v1/viewer/users/invitations/inv_1",
        invitation(clinicRole="Other"),
        Invitation,
        body={"clinicRole": "Other", "suffix1": None, "canManageStudies": False},
    ),
    "invitations.revoke by invitation": Case(
        lambda c: c.viewer.users.invitations.revoke(invitation_id="inv_1"),
        "POST",
        "/v1/viewer/users/invitations/revoke",
        SUCCESS,
        SuccessResponse,
        body={"invitationId": "inv_1"},
    ),
    "invitations.revoke by user": Case(
        lambda c: c.viewer.users.invitations.revoke(user_id="usr_1"),
        "POST",
        "/v1/viewer/users/invitations/revoke",
        SUCCESS,
        SuccessResponse,
        body={"userId": "usr_1"},
    ),
    "invitations.resend": Case(
        lambda c: c.viewer.users.invitations.resend("inv_1"),
        "POST",
        "/v1/viewer/users/invitations/inv_1/resend",
        INVITATION,
        Invitation,
    ),
}


def check(case: Case, api: FakeAPI, result: Any, page_type: type) -> None:
    request = api.last
    assert request.method == case.method
    assert request.url.path == case.path
    assert dict(request.url.params) == case.query
    assert api.body() == case.body
    if case.body is not None:
        assert request.headers["content-type"] == "application/json"
    if case.result_type is SyncCursorPage:
        assert isinstance(result, page_type)
        key = "users" if "users" in case.response else "invitations"
        assert len(getattr(result, key)) == len(case.response[key])
    else:
        assert type(result) is case.result_type
        for name, value in case.response.items():
            if name in ("userId", "invitationId", "firstName", "clinicRole", "message"):
                attr = {
                    "userId": "user_id",
                    "invitationId": "invitation_id",
                    "firstName": "first_name",
                    "clinicRole": "clinic_role",
                }.get(name, name)
                assert getattr(result, attr) == value


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_sync_request_and_result(case: Case, api: FakeAPI, client: Avara) -> None:
    api.reply(case.status, json=case.response)
    result = case.call(client)
    check(case, api, result, SyncCursorPage)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_async_request_and_result(case: Case, api: FakeAPI, async_client: AsyncAvara) -> None:
    api.reply(case.status, json=case.response)
    pending = case.call(async_client)
    assert inspect.isawaitable(pending)
    result = await pending
    check(case, api, result, AsyncCursorPage)


def test_every_public_method_has_a_case_and_an_async_twin() -> None:
    from avara.resources.viewer import AsyncInvitations, AsyncUsers, Invitations, Users

    covered = {name.split()[0] for name in CASES}
    for sync_cls, async_cls, prefix in (
        (Users, AsyncUsers, "users"),
        (Invitations, AsyncInvitations, "invitations"),
    ):
        methods = {
            n for n, f in vars(sync_cls).items() if inspect.isfunction(f) and not n.startswith("_")
        }
        assert {f"{prefix}.{m}" for m in methods} <= covered
        for name in methods:
            twin = getattr(async_cls, name)
            assert inspect.iscoroutinefunction(twin), name
            sync_params = inspect.signature(getattr(sync_cls, name)).parameters
            assert inspect.signature(twin).parameters == sync_params, name
            assert getattr(sync_cls, name).__doc__, f"{prefix}.{name} has no docstring"


def test_invite_result_is_typed_with_parsed_datetimes(api: FakeAPI, client: Avara) -> None:
    api.reply(201, json={**USER, "lastLoginAt": "2024-03-15T09:00:00Z", "middleName": "Marie"})
    response = client.viewer.users.invite(
        can_manage_studies=True,
        clinic_role="Radiologist",
        email="dr.johnson@hospital.org",
        first_name="Sarah",
        has_dashboard_access=True,
        last_name="Johnson",
        level="member",
    )
    assert response.user_id == USER["userId"]
    assert response.middle_name == "Marie"
    assert response.created_at == dt.datetime(2024, 1, 15, 10, tzinfo=dt.timezone.utc)
    assert response.last_login_at == dt.datetime(2024, 3, 15, 9, tzinfo=dt.timezone.utc)
    assert response.invited_source == "api"


def test_models_keep_fields_added_later(api: FakeAPI, client: Avara) -> None:
    api.reply(json=invitation(deliveryStatus="sent", brandNewField={"x": 1}))
    result = client.viewer.users.invitations.retrieve("inv_1")
    assert result.invitation_id == INVITATION["invitationId"]
    assert result.model_extra == {"deliveryStatus": "sent", "brandNewField": {"x": 1}}
    assert result.expiry == dt.datetime(2024, 1, 22, 10, tzinfo=dt.timezone.utc)


def test_owner_appears_in_user_lists(api: FakeAPI, client: Avara) -> None:
    api.reply(
        json={
            "users": [user(level="owner", invitedSource="dashboard")],
            "cursor": None,
            "hasMore": False,
        }
    )
    (owner,) = list(client.viewer.users.list())
    assert owner.level == "owner"


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.viewer.users.invitations.revoke(),
        lambda c: c.viewer.users.invitations.revoke(invitation_id="inv_1", user_id="usr_1"),
    ],
    ids=["neither", "both"],
)
def test_revoke_needs_exactly_one_id_before_sending(
    call: Any, api: FakeAPI, client: Avara, async_client: AsyncAvara
) -> None:
    with pytest.raises(TypeError, match="exactly one"):
        call(client)
    with pytest.raises(TypeError, match="exactly one"):
        call(async_client).send(None)
    assert api.requests == []


def test_path_ids_are_escaped_and_must_not_be_empty(api: FakeAPI, client: Avara) -> None:
    api.reply(404, json={"code": "not_found"})
    with pytest.raises(ValueError, match="user_id"):
        client.viewer.users.retrieve("")
    assert api.requests == []
    with pytest.raises(Exception, match="404"):
        client.viewer.users.retrieve("../invitations/inv_1")
    assert api.last.url.raw_path == b"/v1/viewer/users/..%2Finvitations%2Finv_1"
