"""Mutations under the Idempotency-Key rules: one request at a time, or grouped with
concurrent ones (IdempotentBatcher), recorded and replayed through idempotency_store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from ..clock import utcnow
from ..db import Batcher, Database, retry_on_integrity_error
from ..errors import ValidationFailed
from . import idempotency_store

P = TypeVar("P")
Mutation = Callable[[AsyncConnection], Awaitable[tuple[int, dict[str, Any]]]]


def _reused() -> ValidationFailed:
    return ValidationFailed(
        "This Idempotency-Key was already used with a different request body.",
        code="idempotency_key_reused",
        errors=[
            {
                "field": "Idempotency-Key",
                "message": "was already used with a different request",
            }
        ],
    )


def idempotency_key(request: Request) -> str | None:
    return checked_idempotency_key(request.headers.get("idempotency-key"))


def checked_idempotency_key(key: str | None) -> str | None:
    """The Idempotency-Key header's value, or None without one; 422 when it is unusable."""
    if key is None:
        return None
    if not key.strip() or len(key) > idempotency_store.MAX_KEY_LENGTH:
        raise ValidationFailed(
            "The Idempotency-Key header must be 1 to 255 characters.",
            errors=[{"field": "Idempotency-Key", "message": "must be 1 to 255 characters"}],
        )
    return key


@dataclass(frozen=True)
class KeyedPayload(Generic[P]):
    """A batched mutation's payload with its clinic, Idempotency-Key and request fingerprint."""

    clinic_id: str
    key: str | None
    fingerprint: str
    payload: P


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    replayed: bool = False

    def response(self) -> Response:
        headers = {"Idempotent-Replayed": "true"} if self.replayed else None
        return Response(self.body, self.status, media_type="application/json", headers=headers)


class IdempotentBatcher(Generic[P]):
    """The Idempotency-Key rules, for a group of requests run in one transaction: keys already
    used are replayed (or refused when the body differs), repeats of one key inside the group
    share the first one's outcome, and the responses of the new work are recorded with it."""

    def __init__(self, inner: Batcher[P, tuple[int, dict[str, Any]]], ttl: timedelta) -> None:
        self.inner = inner
        self.ttl = ttl

    async def run(
        self, conn: AsyncConnection, items: list[KeyedPayload[P]]
    ) -> list[Answer | Exception]:
        now = utcnow()
        keys = list({(i.clinic_id, i.key) for i in items if i.key is not None})
        stored = await idempotency_store.find_many(conn, keys, now - self.ttl) if keys else {}
        outcomes: list[Answer | Exception | None] = [None] * len(items)
        leaders: dict[tuple[str, str], int] = {}
        followers: list[tuple[int, int]] = []
        todo: list[int] = []
        for n, item in enumerate(items):
            if item.key is not None:
                slot = (item.clinic_id, item.key)
                if slot in stored:
                    found = stored[slot]
                    outcomes[n] = (
                        Answer(found.status_code, found.body, True)
                        if found.request_hash == item.fingerprint
                        else _reused()
                    )
                    continue
                if slot in leaders:
                    followers.append((n, leaders[slot]))
                    continue
                leaders[slot] = n
            todo.append(n)
        results = await self.inner.run(conn, [items[n].payload for n in todo])
        records = []
        for n, result in zip(todo, results, strict=True):
            if isinstance(result, Exception):
                outcomes[n] = result
                continue
            status, payload = result
            text = orjson.dumps(payload).decode()
            outcomes[n] = Answer(status, text)
            item = items[n]
            if item.key is not None:
                records.append(
                    idempotency_store.NewRecord(
                        item.clinic_id, item.key, item.fingerprint, status, text
                    )
                )
        await idempotency_store.store_many(conn, records, now, self.ttl)
        for n, leader in followers:
            first = outcomes[leader]
            if items[n].fingerprint != items[leader].fingerprint:
                outcomes[n] = _reused()
            elif isinstance(first, Answer):
                outcomes[n] = Answer(first.status, first.body, True)
            else:
                outcomes[n] = first
        return [o if o is not None else RuntimeError("no outcome") for o in outcomes]


async def run_mutation(
    db: Database,
    ttl: timedelta,
    request: Request,
    clinic_id: str,
    body: dict[str, Any],
    mutation: Mutation,
) -> Response:
    """Run mutation in one transaction; with an Idempotency-Key, record or replay its response
    (the rules of IdempotentBatcher, for one request). The response is stored in the same
    transaction as the work, so a retry after a crash finds both or neither."""
    batcher = IdempotentBatcher(_OneMutation(mutation), ttl)
    keyed = _keyed(request, clinic_id, body, None)

    async def transaction(conn: AsyncConnection) -> Answer:
        [answer] = await batcher.run(conn, [keyed])
        if isinstance(answer, Exception):
            raise answer
        return answer

    answer = await retry_on_integrity_error(lambda: db.write(transaction))
    return answer.response()


class _OneMutation:
    def __init__(self, mutation: Mutation) -> None:
        self.mutation = mutation

    async def run(
        self, conn: AsyncConnection, payloads: list[None]
    ) -> list[tuple[int, dict[str, Any]] | Exception]:
        # Nothing to run when the request's key was already used: it is a replay.
        return [await self.mutation(conn) for _ in payloads]


def _keyed(request: Request, clinic_id: str, body: dict[str, Any], payload: P) -> KeyedPayload[P]:
    return keyed_payload(
        request.method,
        request.url.path,
        request.headers.get("idempotency-key"),
        clinic_id,
        body,
        payload,
    )


def keyed_payload(
    method: str,
    path: str,
    idempotency_key_header: str | None,
    clinic_id: str,
    body: dict[str, Any],
    payload: P,
) -> KeyedPayload[P]:
    """A payload with what the Idempotency-Key rules need (422 for an unusable key)."""
    return KeyedPayload(
        clinic_id,
        checked_idempotency_key(idempotency_key_header),
        idempotency_store.request_fingerprint(method, path, body),
        payload,
    )
