"""``with_raw_response``: status, headers and the typed object from ``.parse()``."""

from __future__ import annotations

import httpx
import pytest
from avara_fakes import INVITATION, USER, FakeAPI

import avara
from avara import APIResponse, AsyncAvara, Avara
from avara.types.viewer import Invitation, UserInviteResponse


def test_raw_invite(api: FakeAPI, client: Avara) -> None:
    api.reply(201, json=USER, headers={"x-request-id": "req_1"})
    raw = client.with_raw_response.viewer.users.invite(
        can_manage_studies=True,
        clinic_role="Radiologist",
        email="dr.johnson@hospital.org",
        first_name="Sarah",
        has_dashboard_access=True,
        last_name="Johnson",
        level="member",
    )
    assert isinstance(raw, APIResponse)
    assert raw.status_code == 201
    assert raw.headers["x-request-id"] == "req_1"
    assert isinstance(raw.http_response, httpx.Response)
    assert raw.json()["userId"] == USER["userId"]
    parsed = raw.parse()
    assert isinstance(parsed, UserInviteResponse)
    assert parsed.user_id == USER["userId"]
    assert raw.parse() is parsed
    assert raw.retries_taken == 0


def test_raw_counts_retries(api: FakeAPI, client: Avara, sleeps: list[float]) -> None:
    api.reply(503, json={}).reply(json=INVITATION)
    raw = client.viewer.users.invitations.with_raw_response.resend("inv_1")
    assert raw.retries_taken == 1
    assert isinstance(raw.parse(), Invitation)


def test_raw_list_parses_to_a_working_page(api: FakeAPI, client: Avara) -> None:
    api.reply(json={"users": [USER], "cursor": "c", "hasMore": True})
    api.reply(json={"users": [USER], "cursor": None, "hasMore": False})
    raw = client.with_raw_response.viewer.users.list()
    assert len(api.requests) == 1
    assert len(list(raw.parse())) == 2


def test_raw_still_raises_status_errors(api: FakeAPI, client: Avara) -> None:
    api.problem(404, "user_not_found")
    with pytest.raises(avara.NotFoundError):
        client.with_raw_response.viewer.users.retrieve("usr_x")


def test_normal_calls_after_raw_ones_return_models(api: FakeAPI, client: Avara) -> None:
    api.reply(json=USER)
    client.with_raw_response.viewer.users.retrieve("usr_1")
    assert client.viewer.users.retrieve("usr_1").user_id == USER["userId"]


async def test_async_raw(api: FakeAPI, async_client: AsyncAvara) -> None:
    api.reply(json={"success": True, "message": "Invitation revoked."})
    raw = await async_client.with_raw_response.viewer.users.invitations.revoke(user_id="usr_1")
    assert raw.status_code == 200
    assert raw.parse().message == "Invitation revoked."
