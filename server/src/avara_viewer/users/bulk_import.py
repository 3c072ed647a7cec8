"""Bulk onboarding from a CSV file: every row invited through users.service.invite.

Columns are the invite call's wire names. Each row is checked with the invite call's field
rules, then invited in its own transaction with the command-line actor, so one bad row never
holds back the others. Re-running a file is safe: an address that already exists in the
clinic is reported as already invited, never invited twice.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ..actor import Actor
from ..clock import utcnow
from ..config import Settings
from ..db import Database, open_database
from ..errors import Conflict, ProblemError
from ..fields import email_key, validate
from . import repository as repo
from . import service
from .schemas import UserInviteRequest

COLUMNS = (
    "email",
    "firstName",
    "lastName",
    "middleName",
    "suffix1",
    "suffix2",
    "phoneNumber",
    "clinicRole",
    "level",
    "canManageStudies",
    "hasDashboardAccess",
)
BOOLEAN_COLUMNS = ("canManageStudies", "hasDashboardAccess")
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}
# Rows invited at once: on SQLite the writer commits them together, one fsync for the lot.
_CONCURRENCY = 32


class ImportFileError(Exception):
    """The file cannot be imported at all (unreadable, or its header is wrong)."""


@dataclass
class RowResult:
    row: int  # the line's row number in the file, the header being row 1
    email: str
    outcome: str  # invited | would invite | already invited | failed
    errors: list[dict[str, str]] = field(default_factory=list)
    user_id: str | None = None


@dataclass
class ParsedRow:
    row: int
    data: dict[str, Any]
    request: UserInviteRequest | None
    errors: list[dict[str, str]]


def read_rows(path: Path) -> list[ParsedRow]:
    """Parse and validate every row; raises ImportFileError for a file-level problem."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            unknown = [name for name in header if name not in COLUMNS]
            missing = [
                name
                for name in (
                    "email",
                    "firstName",
                    "lastName",
                    "clinicRole",
                    "level",
                    *BOOLEAN_COLUMNS,
                )
                if name not in header
            ]
            if unknown or missing:
                parts = []
                if unknown:
                    parts.append("unknown columns: " + ", ".join(unknown))
                if missing:
                    parts.append("missing columns: " + ", ".join(missing))
                raise ImportFileError(
                    "; ".join(parts) + ". Columns are the API's names: " + ", ".join(COLUMNS) + "."
                )
            reader.fieldnames = header
            return [_parse(number, raw) for number, raw in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ImportFileError(f"cannot read {path}: {exc}") from None


def _parse(number: int, raw: dict[str | None, Any]) -> ParsedRow:
    errors: list[dict[str, str]] = []
    if None in raw:
        errors.append({"field": "row", "message": "has more values than the header has columns"})
    data: dict[str, Any] = {}
    for name in COLUMNS:
        value = raw.get(name)
        if value is None or value.strip() == "":
            continue  # left out: the invite rules say whether it was required
        if name in BOOLEAN_COLUMNS:
            word = value.strip().lower()
            if word in _TRUE | _FALSE:
                data[name] = word in _TRUE
            else:
                errors.append({"field": name, "message": "must be true/false, yes/no or 1/0"})
            continue
        data[name] = value if name in ("firstName", "lastName", "middleName") else value.strip()
    request = None
    try:
        request = validate(UserInviteRequest, data)
    except ProblemError as exc:
        errors.extend(exc.errors or [{"field": "row", "message": exc.detail}])
    return ParsedRow(number, data, request if not errors else None, errors)


async def run_import(
    settings: Settings,
    clinic_id: str,
    rows: list[ParsedRow],
    *,
    dry_run: bool,
    progress: Callable[[int], None] = lambda n: None,
) -> list[RowResult]:
    """Invite every valid row (or, with dry_run, only report what would happen)."""
    actor = Actor(clinic_id=clinic_id, kind="cli", id=None)
    results: dict[int, RowResult] = {}
    seen: dict[str, int] = {}
    todo: list[ParsedRow] = []
    for parsed in rows:
        email = str(parsed.data.get("email", ""))
        if parsed.request is None:
            results[parsed.row] = RowResult(parsed.row, email, "failed", parsed.errors)
        elif email_key(email) in seen:
            results[parsed.row] = RowResult(
                parsed.row,
                email,
                "failed",
                [{"field": "email", "message": f"repeats row {seen[email_key(email)]}"}],
            )
        else:
            seen[email_key(email)] = parsed.row
            todo.append(parsed)
    progress(len(results))

    db = open_database(settings)
    await db.start()
    try:
        existing = await db.read(
            lambda conn: _existing(conn, clinic_id, (p.data["email"] for p in todo))
        )
        for start in range(0, len(todo), _CONCURRENCY):
            chunk = todo[start : start + _CONCURRENCY]
            done = await asyncio.gather(
                *(_one(db, settings, actor, p, existing, dry_run) for p in chunk)
            )
            for result in done:
                results[result.row] = result
            progress(len(chunk))
    finally:
        await db.close()
    return [results[r.row] for r in rows]


async def _existing(conn: AsyncConnection, clinic_id: str, emails: Iterable[str]) -> set[str]:
    found = set()
    for email in emails:
        if await repo.id_by_email(conn, clinic_id, email_key(email)) is not None:
            found.add(email_key(email))
    return found


async def _one(
    db: Database,
    settings: Settings,
    actor: Actor,
    parsed: ParsedRow,
    existing: set[str],
    dry_run: bool,
) -> RowResult:
    assert parsed.request is not None
    email = parsed.request.email
    if email_key(email) in existing:
        return RowResult(parsed.row, email, "already invited")
    if dry_run:
        return RowResult(parsed.row, email, "would invite")
    request = parsed.request

    async def op(conn: AsyncConnection) -> dict[str, Any]:
        return await service.invite(conn, settings, actor, request, now=utcnow())

    try:
        try:
            row = await db.write(op)
        except IntegrityError:
            # Someone invited the address between our check and our insert (PostgreSQL):
            # running again answers with the Conflict below.
            row = await db.write(op)
    except Conflict:
        return RowResult(parsed.row, email, "already invited")
    except ProblemError as exc:
        return RowResult(
            parsed.row, email, "failed", exc.errors or [{"field": "row", "message": exc.detail}]
        )
    return RowResult(parsed.row, email, "invited", user_id=row["id"])
