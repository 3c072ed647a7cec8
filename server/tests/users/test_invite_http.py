"""POST /v1/viewer/users over HTTP: keys, conflicts, concurrency, idempotency, bad bodies."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from support import Clinic, Server, invite_body


def test_missing_key_is_401_with_www_authenticate(server: Server) -> None:
    response = httpx.post(server.base_url + "/v1/viewer/users", json=invite_body())
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "missing_api_key"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer avk_" + "x" * 43,
        "Bearer not-a-key",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "avk_" + "x" * 43,
    ],
)
def test_wrong_keys_are_401(server: Server, authorization: str) -> None:
    response = httpx.post(
        server.base_url + "/v1/viewer/users",
        json=invite_body(),
        headers={"Authorization": authorization},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["code"] in {"invalid_api_key", "missing_api_key"}


def test_a_key_with_its_last_character_changed_is_refused(server: Server, clinic: Clinic) -> None:
    forged = clinic.key[:-1] + ("A" if clinic.key[-1] != "A" else "B")
    response = httpx.post(
        server.base_url + "/v1/viewer/users",
        json=invite_body(),
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert response.status_code == 401


def test_api_keys_are_stored_only_as_hashes(server: Server, clinic: Clinic) -> None:
    stored = server.sql("SELECT lookup, key_hash FROM api_keys")
    assert stored
    for lookup, key_hash in stored:
        assert clinic.key not in (lookup, key_hash)
        assert len(key_hash) == 64


def test_the_same_email_in_any_case_is_a_409_not_to_be_retried(clinic: Clinic) -> None:
    body = invite_body()
    assert clinic.client.post("/v1/viewer/users", json=body).status_code == 201
    for variant in (body["email"], body["email"].upper(), body["email"].title()):
        response = clinic.client.post("/v1/viewer/users", json=dict(body, email=variant))
        assert response.status_code == 409, response.text
        assert response.headers["x-should-retry"] == "false"
        assert response.json()["code"] == "email_already_exists"


def test_each_key_acts_only_inside_its_clinic(server: Server, clinic: Clinic) -> None:
    other = server.create_clinic("Other Clinic")
    body = invite_body()
    first = other.client.post("/v1/viewer/users", json=body)
    assert first.status_code == 201
    # The same address is free in the first clinic: the other clinic's user is invisible here.
    second = clinic.client.post("/v1/viewer/users", json=body)
    assert second.status_code == 201
    assert first.json()["userId"] != second.json()["userId"]
    rows = server.sql(
        f"SELECT clinic_id FROM users WHERE email = '{body['email']}' ORDER BY clinic_id"
    )
    assert sorted(r[0] for r in rows) == sorted([clinic.id, other.id])


async def _concurrently(
    server: Server, key: str, bodies: list[dict], headers: list[dict] | None = None
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {key}"},
        limits=limits,
        timeout=60,
    ) as client:
        return await asyncio.gather(
            *(
                client.post("/v1/viewer/users", json=b, headers=(headers[i] if headers else None))
                for i, b in enumerate(bodies)
            )
        )


def test_concurrent_invites_of_one_address_give_exactly_one_201(
    server: Server, clinic: Clinic
) -> None:
    body = invite_body()
    responses = asyncio.run(_concurrently(server, clinic.key, [body] * 30))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == 29, statuses
    rows = server.sql(f"SELECT count(*) FROM users WHERE email_lower = '{body['email'].lower()}'")
    assert rows[0][0] == 1


def test_concurrent_invites_of_different_addresses_all_succeed(
    server: Server, clinic: Clinic
) -> None:
    bodies = [invite_body() for _ in range(40)]
    responses = asyncio.run(_concurrently(server, clinic.key, bodies))
    assert [r.status_code for r in responses] == [201] * 40
    assert len({r.json()["userId"] for r in responses}) == 40


def test_idempotent_replay_returns_the_first_response_without_a_second_user(
    server: Server, clinic: Clinic, smtp_sink
) -> None:
    body = invite_body()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = clinic.client.post("/v1/viewer/users", json=body, headers=key)
    again = clinic.client.post("/v1/viewer/users", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    # Key order and spacing of the body do not matter.
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    third = clinic.client.post(
        "/v1/viewer/users", content=reordered,
        headers={**key, "Content-Type": "application/json"},
    )
    assert third.status_code == 201 and third.json() == first.json()
    assert server.sql(f"SELECT count(*) FROM users WHERE email = '{body['email']}'")[0][0] == 1
    smtp_sink.wait_for(body["email"])
    import time

    time.sleep(1.0)
    assert len(smtp_sink.to(body["email"])) == 1


def test_the_same_key_with_another_body_is_a_422(clinic: Clinic) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = clinic.client.post("/v1/viewer/users", json=invite_body(), headers=key)
    assert first.status_code == 201
    response = clinic.client.post("/v1/viewer/users", json=invite_body(), headers=key)
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"


def test_concurrent_retries_with_one_key_create_one_user(server: Server, clinic: Clinic) -> None:
    body = invite_body()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    responses = asyncio.run(_concurrently(server, clinic.key, [body] * 10, [key] * 10))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["userId"] for r in responses}) == 1
    assert server.sql(f"SELECT count(*) FROM users WHERE email = '{body['email']}'")[0][0] == 1


def test_idempotency_keys_are_per_clinic(server: Server, clinic: Clinic) -> None:
    other = server.create_clinic("Third Clinic")
    key = {"Idempotency-Key": "shared-key-" + uuid.uuid4().hex}
    body = invite_body()
    a = clinic.client.post("/v1/viewer/users", json=body, headers=key)
    b = other.client.post("/v1/viewer/users", json=body, headers=key)
    assert a.status_code == b.status_code == 201
    assert a.json()["userId"] != b.json()["userId"]


def test_an_oversized_body_is_413(clinic: Clinic) -> None:
    body = invite_body(firstName="a" * (70 * 1024))
    response = clinic.client.post("/v1/viewer/users", json=body)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_an_oversized_chunked_body_is_413(clinic: Clinic) -> None:
    def chunks():
        yield b'{"firstName": "'
        for _ in range(80):
            yield b"a" * 1024
        yield b'"}'

    response = clinic.client.post(
        "/v1/viewer/users", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", json.dumps(invite_body())),
        ("application/x-www-form-urlencoded", "firstName=Sarah"),
        (None, json.dumps(invite_body())),
    ],
)
def test_a_body_that_is_not_json_is_415(
    clinic: Clinic, content_type: str | None, content: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    request = clinic.client.build_request(
        "POST", "/v1/viewer/users", content=content, headers=headers
    )
    assert ("content-type" in request.headers) == (content_type is not None)
    response = clinic.client.send(request)
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "content",
    [b"{", b'{"firstName": }', b"", b'{"a": NaN}', b"\xff\xfe{}", b"[" * 100_00 + b"]" * 100_00],
)
def test_malformed_json_is_400(clinic: Clinic, content: bytes) -> None:
    response = clinic.client.post(
        "/v1/viewer/users", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_json"


@pytest.mark.parametrize("content", [b"[]", b'"text"', b"42", b"null"])
def test_json_that_is_not_an_object_is_422(clinic: Clinic, content: bytes) -> None:
    response = clinic.client.post(
        "/v1/viewer/users", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"


def test_a_charset_parameter_is_accepted(clinic: Clinic) -> None:
    response = clinic.client.post(
        "/v1/viewer/users",
        content=json.dumps(invite_body()),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


def test_unknown_paths_and_methods_are_problems(clinic: Clinic) -> None:
    missing = clinic.client.get("/v1/viewer/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    wrong = clinic.client.delete("/v1/viewer/users")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"
