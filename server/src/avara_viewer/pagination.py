"""Keyset pagination for newest-first lists: signed opaque cursors and the seek condition.

A cursor names the last row of a page by (created_at, id). The next page is the rows strictly
before it in (created_at desc, id desc) order, read from an index on (clinic_id, created_at,
id): page 10,000 costs what page 1 costs. The cursor is base64url JSON plus an HMAC under the
server secret, so a client can neither forge a position nor make the server parse garbage; any
cursor that does not verify is a 422 with code `invalid_cursor`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.sql.elements import ColumnClause

from .errors import ValidationFailed

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_MAX_CURSOR_CHARS = 512
_MAC_BYTES = 16

Row = TypeVar("Row")


@dataclass(frozen=True)
class Position:
    created_at: datetime
    id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret_key: bytes, kind: str, payload: bytes) -> bytes:
    return hmac.new(
        secret_key, b"cursor:" + kind.encode() + b":" + payload, hashlib.sha256
    ).digest()[:_MAC_BYTES]


def encode_cursor(secret_key: bytes, kind: str, position: Position) -> str:
    """An opaque cursor for the list `kind` ("users", "invitations", ...) after `position`."""
    instant = position.created_at.astimezone(UTC).replace(tzinfo=None)
    payload = json.dumps(
        {"t": instant.isoformat(timespec="microseconds"), "id": position.id},
        separators=(",", ":"),
    ).encode()
    return f"{_b64(payload)}.{_b64(_mac(secret_key, kind, payload))}"


def invalid_cursor() -> ValidationFailed:
    return ValidationFailed(
        "The cursor is not valid: pass the `cursor` of a previous page unchanged.",
        code="invalid_cursor",
        errors=[{"field": "cursor", "message": "is not a cursor returned by this list"}],
    )


def decode_cursor(secret_key: bytes, kind: str, cursor: str) -> Position:
    """The position a cursor names; a 422 (`invalid_cursor`) for anything we did not issue."""
    try:
        if len(cursor) > _MAX_CURSOR_CHARS:
            raise ValueError("too long")
        encoded_payload, _, encoded_mac = cursor.partition(".")
        payload = _unb64(encoded_payload)
        if not hmac.compare_digest(_unb64(encoded_mac), _mac(secret_key, kind, payload)):
            raise ValueError("bad signature")
        data = json.loads(payload)
        created_at = datetime.fromisoformat(data["t"]).replace(tzinfo=UTC)
        row_id = data["id"]
        if not isinstance(row_id, str):
            raise ValueError("bad id")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise invalid_cursor() from None
    return Position(created_at, row_id)


def before(
    created_at: ColumnClause[Any] | Any, id_: ColumnClause[Any] | Any, position: Position
) -> ColumnElement[bool]:
    """Rows strictly after `position` in newest-first order.

    Written as `created_at <= t AND (created_at < t OR id < i)` rather than a row-value
    comparison: both SQLite and PostgreSQL turn the first term into an index range on
    (clinic_id, created_at) and check the second on the few rows that share `t`.
    """
    return and_(
        created_at <= position.created_at,
        or_(created_at < position.created_at, id_ < position.id),
    )


def split_page(rows: Sequence[Row], limit: int) -> tuple[list[Row], bool]:
    """Rows fetched with `limit + 1`: the page itself, and whether another follows."""
    return list(rows[:limit]), len(rows) > limit
