"""Recording, verifying and exporting the audit trail.

Every change to users, invitations and API keys emits a domain event (events.py), which calls
`record_many()` inside the change's own transaction, so the entry commits with the change or
not at all. Entries of one clinic form a chain: entry n
carries the hash of entry n-1 and its own hash is sha256(prev_hash + canonical JSON of the
entry), so editing, deleting or reordering any entry but the newest breaks the chain and
`verify()` names the first broken one.

Appending must see the clinic's latest entry: on SQLite the single writer already serializes
every write; on PostgreSQL a transaction-scoped advisory lock per clinic does. Callers record
after their other writes, so the lock is held only for the end of the transaction.

No secrets go in: callers pass field changes of users and invitations, never tokens, nonces,
key hashes or passwords (`diff()` refuses such field names as a guard).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..actor import Actor
from ..clock import rfc3339
from ..db import insert_rows
from ..pagination import Position, decode_cursor, encode_cursor, invalid_cursor, split_page
from .models import AuditEntry

audit_log = AuditEntry.__table__

GENESIS = "0" * 64
REQUEST_ID_MAX = 64
_SECRET_WORDS = ("token", "nonce", "password", "hash", "secret")
_CURSOR_KIND = "audit"


def _instant(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


# json.dumps with these options, made once: dumps builds an encoder on every call.
_SORTED_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(entry: Mapping[str, Any]) -> str:
    """The JSON that is hashed: every recorded column but the hashes, keys sorted."""
    return _SORTED_JSON.encode(
        {
            "clinicId": entry["clinic_id"],
            "seq": entry["seq"],
            "actorType": entry["actor_type"],
            "actorId": entry["actor_id"],
            "action": entry["action"],
            "targetType": entry["target_type"],
            "targetId": entry["target_id"],
            "changes": json.loads(entry["changes"]),
            "requestId": entry["request_id"],
            "createdAt": _instant(entry["created_at"]),
        }
    )


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(entry)).encode()).hexdigest()


_encode_text = json.encoder.encode_basestring  # what _SORTED_JSON writes for a str


def _json_value(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is str:
        return _encode_text(value)
    return _SORTED_JSON.encode(value)


# Values orjson writes exactly as _SORTED_JSON does (str: every code point escaped alike; int:
# the same digits, or a TypeError past 64 bits). Floats are not: orjson writes 1e16, json 1e+16.
_SAME_IN_ORJSON = frozenset((str, bool, int, type(None)))


def changes_json(changes: Mapping[str, Any]) -> str:
    """_SORTED_JSON's text of a `diff()`-shaped dict ({field: {"before", "after"}}): by orjson
    (7.4 → 1.8 µs for an invite's) when every value is a plain string, boolean, integer or
    null; otherwise, or when orjson refuses a value (a lone surrogate, a 65-bit integer), by
    json."""
    for change in changes.values():
        if type(change) is not dict:
            return _SORTED_JSON.encode(dict(changes))
        for value in change.values():
            if type(value) not in _SAME_IN_ORJSON:
                return _SORTED_JSON.encode(dict(changes))
    try:
        return orjson.dumps(changes, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return _SORTED_JSON.encode(dict(changes))


def canonical_of_new(entry: Mapping[str, Any], changes_json: str) -> str:
    """canonical(entry) of an entry being appended, whose "changes" is `changes_json`, the
    _SORTED_JSON text of a dict: the same text, built with that JSON spliced in rather than
    parsed and encoded again, and the keys written in their sorted order."""
    return (
        f'{{"action":{_json_value(entry["action"])}'
        f',"actorId":{_json_value(entry["actor_id"])}'
        f',"actorType":{_json_value(entry["actor_type"])}'
        f',"changes":{changes_json}'
        f',"clinicId":{_json_value(entry["clinic_id"])}'
        f',"createdAt":{_encode_text(_instant(entry["created_at"]))}'
        f',"requestId":{_json_value(entry["request_id"])}'
        f',"seq":{_json_value(entry["seq"])}'
        f',"targetId":{_json_value(entry["target_id"])}'
        f',"targetType":{_json_value(entry["target_type"])}}}'
    )


@functools.lru_cache(maxsize=256)
def _looks_secret(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_WORDS)


def diff(before_values: Mapping[str, Any], after_values: Mapping[str, Any]) -> dict[str, Any]:
    """{field: {"before", "after"}} for the fields whose value changed (wire names)."""
    changes: dict[str, Any] = {}
    for name in sorted(set(before_values) | set(after_values)):
        if _looks_secret(name):
            raise ValueError(f"refusing to audit the secret-looking field {name!r}")
        old, new = before_values.get(name), after_values.get(name)
        if old != new:
            changes[name] = {"before": old, "after": new}
    return changes


def _lock_key(clinic_id: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"audit:{clinic_id}".encode()).digest()[:8], "big", signed=True
    )


def _clean_request_id(request_id: str | None) -> str | None:
    if request_id is None:
        return None
    if request_id.isprintable():  # every character is: nothing to drop
        return request_id[:REQUEST_ID_MAX] or None
    cleaned = "".join(ch for ch in request_id if ch.isprintable())[:REQUEST_ID_MAX]
    return cleaned or None


@dataclass(frozen=True)
class Draft:
    """One change to append: who did what to which target."""

    actor: Actor
    action: str
    target_type: str
    target_id: str | None
    changes: Mapping[str, Any]
    now: datetime


_LAST_ENTRY = (
    select(audit_log.c.seq, audit_log.c.hash)
    .where(audit_log.c.clinic_id == bindparam("clinic_id"))
    .order_by(audit_log.c.seq.desc())
    .limit(1)
)


async def record_many(conn: AsyncConnection, drafts: list[Draft]) -> None:
    """Append entries in order, each clinic's chain read once and extended in memory (called
    only by events.emit)."""
    if not drafts:
        return
    clinic_ids = sorted({d.actor.clinic_id for d in drafts})
    heads: dict[str, tuple[int, str]] = {}
    for clinic_id in clinic_ids:  # sorted, so concurrent writers take the locks in one order
        if conn.dialect.name == "postgresql":
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(clinic_id)}
            )
        last = (await conn.execute(_LAST_ENTRY, {"clinic_id": clinic_id})).first()
        heads[clinic_id] = (last.seq, last.hash) if last is not None else (0, GENESIS)
    rows = []
    for draft in drafts:
        clinic_id = draft.actor.clinic_id
        seq, prev_hash = heads[clinic_id]
        changes = changes_json(draft.changes)
        entry = {
            "clinic_id": clinic_id,
            "seq": seq + 1,
            "actor_type": draft.actor.kind,
            "actor_id": draft.actor.id,
            "action": draft.action,
            "target_type": draft.target_type,
            "target_id": draft.target_id,
            "changes": changes,
            "request_id": _clean_request_id(draft.actor.request_id),
            "created_at": draft.now.astimezone(UTC),
        }
        # entry_hash(prev_hash, entry), without parsing `changes` back (canonical_of_new).
        digest = hashlib.sha256((prev_hash + canonical_of_new(entry, changes)).encode()).hexdigest()
        rows.append({**entry, "prev_hash": prev_hash, "hash": digest})
        heads[clinic_id] = (seq + 1, digest)
    await insert_rows(conn, audit_log, rows)


@dataclass(frozen=True)
class Break:
    """The first entry of a clinic whose chain does not verify."""

    clinic_id: str
    seq: int
    entry_id: int
    reason: str

    def __str__(self) -> str:
        return f"clinic {self.clinic_id}: entry seq {self.seq} (id {self.entry_id}) {self.reason}"


@dataclass(frozen=True)
class Verification:
    clinics: int
    entries: int
    breaks: list[Break]


async def verify(conn: AsyncConnection, clinic_id: str | None = None) -> Verification:
    """Recompute every chain (or one clinic's); the first break of each clinic is reported."""
    query = select(audit_log).order_by(audit_log.c.clinic_id, audit_log.c.seq)
    if clinic_id is not None:
        query = query.where(audit_log.c.clinic_id == clinic_id)
    breaks: list[Break] = []
    clinics = entries = 0
    current: str | None = None
    expected_seq, prev_hash, broken = 1, GENESIS, False
    result = await conn.stream(query)
    async for row in result.mappings():
        entries += 1
        if row["clinic_id"] != current:
            current, clinics = row["clinic_id"], clinics + 1
            expected_seq, prev_hash, broken = 1, GENESIS, False
        if broken:
            continue
        reason = None
        if row["seq"] != expected_seq:
            reason = f"has sequence {row['seq']}, expected {expected_seq} (an entry is missing)"
        elif row["prev_hash"] != prev_hash:
            reason = "does not link to the entry before it"
        else:
            try:
                recomputed = entry_hash(prev_hash, row)
            except (ValueError, TypeError):
                recomputed = None
            if recomputed != row["hash"]:
                reason = "was changed after it was written (its hash does not match)"
        if reason is not None:
            breaks.append(Break(row["clinic_id"], row["seq"], row["id"], reason))
            broken = True
            continue
        expected_seq, prev_hash = row["seq"] + 1, row["hash"]
    return Verification(clinics, entries, breaks)


def entry_wire(row: Mapping[str, Any]) -> dict[str, Any]:
    """An entry as shown in the dashboard and exported: camelCase, changes parsed."""
    return {
        "seq": row["seq"],
        "createdAt": rfc3339(row["created_at"]),
        "actorType": row["actor_type"],
        "actorId": row["actor_id"],
        "action": row["action"],
        "targetType": row["target_type"],
        "targetId": row["target_id"],
        "changes": json.loads(row["changes"]),
        "requestId": row["request_id"],
        "hash": row["hash"],
    }


async def iter_since(
    conn: AsyncConnection, clinic_id: str, since: datetime
) -> AsyncIterator[Mapping[str, Any]]:
    """The clinic's entries created at or after `since`, oldest first (for export)."""
    result = await conn.stream(
        select(audit_log)
        .where(audit_log.c.clinic_id == clinic_id, audit_log.c.created_at >= since)
        .order_by(audit_log.c.seq)
    )
    async for row in result.mappings():
        yield row


CSV_COLUMNS = (
    "seq",
    "createdAt",
    "actorType",
    "actorId",
    "action",
    "targetType",
    "targetId",
    "changes",
    "requestId",
    "hash",
)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = (
        value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    )
    # A leading =, +, - or @ would run as a formula when the file is opened in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_csv(handle: TextIO, entries: Iterable[Mapping[str, Any]]) -> int:
    """Write `entry_wire` entries as CSV (the CLI export and the dashboard download);
    returns how many rows were written."""
    writer = csv.writer(handle)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for entry in entries:
        writer.writerow([_csv_cell(entry[column]) for column in CSV_COLUMNS])
        count += 1
    return count


@dataclass(frozen=True)
class EntryPage:
    entries: list[dict[str, Any]]
    cursor: str | None
    has_more: bool


async def list_entries(
    conn: AsyncConnection,
    secret_key: bytes,
    clinic_id: str,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> EntryPage:
    """A page of the clinic's entries, newest first (for the dashboard's audit page)."""
    # seq orders entries exactly; it is carried in the cursor's id slot as a zero-padded string.
    query = select(audit_log).where(audit_log.c.clinic_id == clinic_id)
    if cursor is not None:
        position = decode_cursor(secret_key, _CURSOR_KIND, cursor)
        if not position.id.isdigit():
            raise invalid_cursor()
        query = query.where(audit_log.c.seq < int(position.id))
    rows = (
        (await conn.execute(query.order_by(audit_log.c.seq.desc()).limit(limit + 1)))
        .mappings()
        .all()
    )
    page, has_more = split_page(rows, limit)
    next_cursor = (
        encode_cursor(
            secret_key, _CURSOR_KIND, Position(page[-1]["created_at"], str(page[-1]["seq"]))
        )
        if has_more and page
        else None
    )
    return EntryPage([entry_wire(r) for r in page], next_cursor, has_more)


@dataclass(frozen=True)
class AuditFilters:
    """The dashboard audit page's filters; "" and None mean not filtered."""

    action: str = ""
    actor_id: str = ""
    target_id: str = ""
    start: datetime | None = None
    end: datetime | None = None  # exclusive


async def filtered_entries(
    conn: AsyncConnection,
    clinic_id: str,
    filters: AuditFilters,
    *,
    before_seq: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The clinic's entries matching the filters, newest first (keyset on seq)."""
    query = select(audit_log).where(audit_log.c.clinic_id == clinic_id)
    if filters.action:
        query = query.where(audit_log.c.action == filters.action)
    if filters.actor_id:
        query = query.where(audit_log.c.actor_id == filters.actor_id)
    if filters.target_id:
        query = query.where(audit_log.c.target_id == filters.target_id)
    if filters.start is not None:
        query = query.where(audit_log.c.created_at >= filters.start)
    if filters.end is not None:
        query = query.where(audit_log.c.created_at < filters.end)
    if before_seq is not None:
        query = query.where(audit_log.c.seq < before_seq)
    rows = (
        (await conn.execute(query.order_by(audit_log.c.seq.desc()).limit(limit))).mappings().all()
    )
    return [entry_wire(r) for r in rows]


async def actions_in(conn: AsyncConnection, clinic_id: str) -> list[str]:
    """The actions the clinic's trail holds, for the page's filter."""
    return list(
        (
            await conn.execute(
                select(audit_log.c.action)
                .where(audit_log.c.clinic_id == clinic_id)
                .distinct()
                .order_by(audit_log.c.action)
            )
        ).scalars()
    )
