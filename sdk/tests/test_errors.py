"""Error responses become the contract's exception classes, with the problem's fields readable."""

from __future__ import annotations

import httpx
import pytest
from avara_fakes import FakeAPI

import avara
from avara import AsyncAvara, Avara, FieldError

STATUS_ERRORS = [
    (400, avara.BadRequestError),
    (401, avara.AuthenticationError),
    (403, avara.PermissionDeniedError),
    (404, avara.NotFoundError),
    (409, avara.ConflictError),
    (413, avara.APIStatusError),
    (415, avara.APIStatusError),
    (422, avara.UnprocessableEntityError),
    (429, avara.RateLimitError),
    (500, avara.InternalServerError),
    (502, avara.InternalServerError),
    (503, avara.InternalServerError),
]


@pytest.mark.parametrize(("status", "error_class"), STATUS_ERRORS)
def test_status_maps_to_exception(
    status: int, error_class: type[avara.APIStatusError], api: FakeAPI, client: Avara
) -> None:
    api.problem(
        status, f"code_{status}", detail=f"detail {status}", headers={"x-should-retry": "false"}
    )
    with pytest.raises(error_class) as caught:
        client.viewer.users.retrieve("usr_1")
    error = caught.value
    assert type(error) is error_class
    assert isinstance(error, avara.APIStatusError)
    assert isinstance(error, avara.APIError)
    assert isinstance(error, avara.AvaraError)
    assert error.status_code == status
    assert error.response.status_code == status
    assert error.code == f"code_{status}"
    assert error.detail == f"detail {status}"
    assert error.title == f"code {status}"
    assert error.body["status"] == status  # type: ignore[index]
    assert f"Error code: {status} - detail {status}" in str(error)


def test_validation_errors_name_each_field(api: FakeAPI, client: Avara) -> None:
    api.problem(
        422,
        "validation_failed",
        detail="2 fields are invalid",
        errors=[
            {"field": "phoneNumber", "message": "must be 10-15 digits"},
            {"field": "level", "message": "owner cannot be assigned through the API"},
        ],
    )
    with pytest.raises(avara.UnprocessableEntityError) as caught:
        client.viewer.users.invite(
            can_manage_studies=True,
            clinic_role="Radiologist",
            email="a@b.org",
            first_name="A",
            has_dashboard_access=True,
            last_name="B",
            level="member",
            phone_number="12",
        )
    assert caught.value.errors == [
        FieldError(field="phoneNumber", message="must be 10-15 digits"),
        FieldError(field="level", message="owner cannot be assigned through the API"),
    ]
    assert [e.field for e in caught.value.errors] == ["phoneNumber", "level"]


def test_body_that_is_not_json(api: FakeAPI, client: Avara) -> None:
    api.reply_with(httpx.Response(403, text="<html>forbidden by proxy</html>"))
    with pytest.raises(avara.PermissionDeniedError) as caught:
        client.viewer.users.retrieve("usr_1")
    assert caught.value.body == "<html>forbidden by proxy</html>"
    assert caught.value.code is None
    assert caught.value.errors == []


def test_authentication_error_without_retry(api: FakeAPI, client: Avara) -> None:
    api.problem(401, "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
    with pytest.raises(avara.AuthenticationError) as caught:
        client.viewer.users.list()
    assert caught.value.response.headers["www-authenticate"] == "Bearer"
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("failure", "error_class"),
    [
        (httpx.ConnectError("connection refused"), avara.APIConnectionError),
        (httpx.RemoteProtocolError("server hung up"), avara.APIConnectionError),
        (httpx.ReadTimeout("slow"), avara.APITimeoutError),
        (httpx.ConnectTimeout("slow"), avara.APITimeoutError),
    ],
)
def test_transport_failures(
    failure: Exception, error_class: type[avara.APIConnectionError], api: FakeAPI, client: Avara
) -> None:
    api.reply_with(failure)
    with pytest.raises(error_class) as caught:
        client.viewer.users.retrieve("usr_1")
    assert type(caught.value) is error_class
    assert not isinstance(caught.value, avara.APIStatusError)
    assert caught.value.request.url.path == "/v1/viewer/users/usr_1"


async def test_async_errors_are_the_same(api: FakeAPI, async_client: AsyncAvara) -> None:
    api.problem(409, "email_taken", detail="already invited", headers={"x-should-retry": "false"})
    with pytest.raises(avara.ConflictError) as caught:
        await async_client.viewer.users.revoke_access(user_id="usr_1")
    assert caught.value.code == "email_taken"
    api.reply_with(httpx.ReadTimeout("slow"))
    with pytest.raises(avara.APITimeoutError):
        await async_client.viewer.users.retrieve("usr_1")
