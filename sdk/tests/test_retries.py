"""Retries: which failures, how long between attempts, and one Idempotency-Key per call."""

from __future__ import annotations

import email.utils
import time
import uuid
from collections.abc import Callable

import httpx
import pytest
from avara_fakes import INVITATION, USER, FakeAPI

import avara
from avara import AsyncAvara, Avara

INVITE = {
    "can_manage_studies": True,
    "clinic_role": "Radiologist",
    "email": "dr.johnson@hospital.org",
    "first_name": "Sarah",
    "has_dashboard_access": True,
    "last_name": "Johnson",
    "level": "member",
}


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_retryable_status_is_retried_then_succeeds(
    status: int, api: FakeAPI, client: Avara, sleeps: list[float]
) -> None:
    api.reply(status, json={"code": "x"}).reply(status, json={"code": "x"}).reply(200, json=USER)
    user = client.viewer.users.retrieve("usr_1")
    assert user.user_id == USER["userId"]
    assert len(api.requests) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 415, 422])
def test_client_errors_are_not_retried(
    status: int, api: FakeAPI, client: Avara, sleeps: list[float]
) -> None:
    api.reply(status, json={"code": "x"})
    with pytest.raises(avara.APIStatusError):
        client.viewer.users.retrieve("usr_1")
    assert len(api.requests) == 1
    assert sleeps == []


def test_gives_up_after_max_retries_with_exponential_jittered_backoff(
    api: FakeAPI, client: Avara, sleeps: list[float]
) -> None:
    api.reply(503, json={"code": "unavailable"})
    with pytest.raises(avara.InternalServerError):
        client.with_options(max_retries=5).viewer.users.retrieve("usr_1")
    assert len(api.requests) == 6
    # 0.5 s doubling, capped at 8 s, each shortened by up to 25 % of jitter.
    for delay, ceiling in zip(sleeps, [0.5, 1.0, 2.0, 4.0, 8.0], strict=True):
        assert 0.75 * ceiling <= delay <= ceiling


def test_default_is_two_retries(api: FakeAPI, client: Avara, sleeps: list[float]) -> None:
    api.reply(500, json={})
    with pytest.raises(avara.InternalServerError):
        client.viewer.users.list()
    assert len(api.requests) == 3


def test_max_retries_zero_sends_once(api: FakeAPI, client: Avara, sleeps: list[float]) -> None:
    api.reply(500, json={})
    with pytest.raises(avara.InternalServerError):
        client.with_options(max_retries=0).viewer.users.list()
    assert len(api.requests) == 1
    assert sleeps == []


def test_jitter_varies(api: FakeAPI, client: Avara, sleeps: list[float]) -> None:
    api.reply(500, json={})
    for _ in range(10):
        with pytest.raises(avara.InternalServerError):
            client.viewer.users.list()
    assert len({round(d, 6) for d in sleeps[::2]}) > 1


def test_connection_errors_and_timeouts_are_retried(
    api: FakeAPI, client: Avara, sleeps: list[float]
) -> None:
    api.reply_with(httpx.ConnectError("refused")).reply_with(httpx.ReadTimeout("slow"))
    api.reply(json=USER)
    assert client.viewer.users.retrieve("usr_1").email == USER["email"]
    assert len(api.requests) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize(("header", "expected"), [("2", 2.0), ("0.5", 0.5), ("120", 60.0)])
def test_retry_after_seconds_is_obeyed_up_to_a_minute(
    header: str, expected: float, api: FakeAPI, client: Avara, sleeps: list[float]
) -> None:
    api.reply(429, json={"code": "rate_limited"}, headers={"Retry-After": header})
    api.reply(json=USER)
    client.viewer.users.retrieve("usr_1")
    assert sleeps == [expected]


def test_retry_after_http_date(api: FakeAPI, client: Avara, sleeps: list[float]) -> None:
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    api.reply(503, json={}, headers={"Retry-After": when}).reply(json=USER)
    client.viewer.users.retrieve("usr_1")
    (delay,) = sleeps
    assert 3.5 <= delay <= 5.0


def test_retry_after_ms_wins(api: FakeAPI, client: Avara, sleeps: list[float]) -> None:
    api.reply(429, json={}, headers={"retry-after-ms": "250", "Retry-After": "3"})
    api.reply(json=USER)
    client.viewer.users.retrieve("usr_1")
    assert sleeps == [0.25]


def test_unparsable_retry_after_falls_back_to_backoff(
    api: FakeAPI, client: Avara, sleeps: list[float]
) -> None:
    api.reply(429, json={}, headers={"Retry-After": "soon"}).reply(json=USER)
    client.viewer.users.retrieve("usr_1")
    (delay,) = sleeps
    assert 0.375 <= delay <= 0.5


def test_conflict_marked_should_not_retry_is_raised_at_once(
    api: FakeAPI, client: Avara, sleeps: list[float]
) -> None:
    api.problem(409, "email_taken", headers={"x-should-retry": "false"})
    with pytest.raises(avara.ConflictError):
        client.viewer.users.invite(**INVITE)  # type: ignore[arg-type]
    assert len(api.requests) == 1
    assert sleeps == []


def test_should_retry_true_retries_even_a_400(
    api: FakeAPI, client: Avara, sleeps: list[float]
) -> None:
    api.reply(400, json={}, headers={"x-should-retry": "true"}).reply(201, json=USER)
    client.viewer.users.invite(**INVITE)  # type: ignore[arg-type]
    assert len(api.requests) == 2


def test_should_retry_false_stops_a_503(api: FakeAPI, client: Avara) -> None:
    api.reply(503, json={}, headers={"x-should-retry": "false"})
    with pytest.raises(avara.InternalServerError):
        client.viewer.users.list()
    assert len(api.requests) == 1


def test_one_idempotency_key_per_call_kept_across_retries(api: FakeAPI, client: Avara) -> None:
    api.reply(500, json={}).reply_with(httpx.ConnectError("reset")).reply(201, json=USER)
    api.reply(201, json=USER)
    client.viewer.users.invite(**INVITE)  # type: ignore[arg-type]
    client.viewer.users.invite(**INVITE)  # type: ignore[arg-type]
    keys = [request.headers["idempotency-key"] for request in api.requests]
    assert len(keys) == 4
    assert keys[0] == keys[1] == keys[2]
    assert keys[3] != keys[0]
    assert uuid.UUID(keys[0]).version == 4


SUCCESS = {"success": True, "message": "ok"}


@pytest.mark.parametrize(
    ("call", "response"),
    [
        (lambda c: c.viewer.users.update("usr_1", first_name="A"), USER),
        (lambda c: c.viewer.users.revoke_access(user_id="usr_1"), SUCCESS),
        (lambda c: c.viewer.users.reactivate(user_id="usr_1"), SUCCESS),
        (lambda c: c.viewer.users.invitations.update("inv_1", last_name="B"), INVITATION),
        (lambda c: c.viewer.users.invitations.revoke(invitation_id="inv_1"), SUCCESS),
        (lambda c: c.viewer.users.invitations.resend("inv_1"), INVITATION),
    ],
)
def test_every_post_and_patch_carries_a_key(
    call: Callable[[Avara], object], response: dict[str, object], api: FakeAPI, client: Avara
) -> None:
    api.reply(json=response)
    call(client)
    assert uuid.UUID(api.last.headers["idempotency-key"]).version == 4


def test_reads_carry_no_key(api: FakeAPI, client: Avara) -> None:
    api.reply(json=USER)
    client.viewer.users.retrieve("usr_1")
    assert "idempotency-key" not in api.last.headers


def test_caller_chosen_idempotency_key(api: FakeAPI, client: Avara) -> None:
    api.reply(500, json={}).reply(201, json=USER)
    client.viewer.users.invite(**INVITE, idempotency_key="order-42")  # type: ignore[arg-type]
    assert [r.headers["idempotency-key"] for r in api.requests] == ["order-42", "order-42"]
    client.viewer.users.invite(**INVITE, extra_headers={"Idempotency-Key": "order-43"})  # type: ignore[arg-type]
    assert api.last.headers.get_list("idempotency-key") == ["order-43"]


async def test_async_retries_with_one_key(
    api: FakeAPI, async_client: AsyncAvara, sleeps: list[float]
) -> None:
    api.reply(429, json={}, headers={"Retry-After": "1"}).reply(502, json={}).reply(201, json=USER)
    await async_client.viewer.users.invite(**INVITE)  # type: ignore[arg-type]
    assert len({r.headers["idempotency-key"] for r in api.requests}) == 1
    assert len(api.requests) == 3
    assert sleeps[0] == 1.0
    assert 0.75 <= sleeps[1] <= 1.0


async def test_async_gives_up_on_connection_errors(
    api: FakeAPI, async_client: AsyncAvara, sleeps: list[float]
) -> None:
    api.reply_with(httpx.ConnectError("refused"))
    with pytest.raises(avara.APIConnectionError):
        await async_client.viewer.users.list()
    assert len(api.requests) == 3
    assert len(sleeps) == 2
