"""Bulk onboarding from a CSV file (`avara-viewer users import`): every row invited through
flows.invite_many, the bulk invite the dashboard's CSV form uses too.

Columns are the invite call's wire names. Each row is checked with the invite call's field
rules, then the valid rows are invited with the command-line actor, a chunk per transaction;
a bad or taken row never holds back the others. Re-running a file is safe: an address that
already exists in the clinic is reported as already invited, never invited twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import flows
from .actor import Actor
from .clock import utcnow
from .config import Settings
from .db import Database, open_database, retry_on_integrity_error
from .errors import Conflict
from .fields import email_key
from .users import service as users
from .users.csv_rows import CsvFileError, CsvRow, read_people
from .users.service import InviteItem

# Rows invited in one transaction (one statement per table, one commit for the lot).
_CHUNK = 100


class ImportFileError(Exception):
    """The file cannot be imported at all (unreadable, or its header is wrong)."""


@dataclass
class RowResult:
    row: int  # the row's line in the file, the header being line 1
    email: str
    outcome: str  # invited | would invite | already invited | failed
    errors: list[dict[str, str]] = field(default_factory=list)
    user_id: str | None = None


def read_rows(path: Path) -> list[CsvRow]:
    """Parse and validate every row (users.csv_rows, with the wire names as the header);
    raises ImportFileError for a file-level problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"cannot read {path}: {exc}") from None
    try:
        return read_people(text, exact_header=True)
    except CsvFileError as exc:
        raise ImportFileError(str(exc)) from None


def _errors(row: CsvRow) -> list[dict[str, str]]:
    return [{"field": name, "message": message} for name, message in row.errors.items()]


async def run_import(
    settings: Settings,
    clinic_id: str,
    rows: list[CsvRow],
    *,
    dry_run: bool,
    progress: Callable[[int], None] = lambda n: None,
) -> list[RowResult]:
    """Invite every valid row through flows.invite_many, a chunk per transaction (or, with
    dry_run, only report what would happen)."""
    actor = Actor(clinic_id=clinic_id, kind="cli", id=None)
    results: dict[int, RowResult] = {}
    seen: dict[str, int] = {}
    todo: list[CsvRow] = []
    for parsed in rows:
        email = str(parsed.data.get("email", ""))
        if parsed.request is None:
            results[parsed.line] = RowResult(parsed.line, email, "failed", _errors(parsed))
        elif email_key(email) in seen:
            results[parsed.line] = RowResult(
                parsed.line,
                email,
                "failed",
                [{"field": "email", "message": f"repeats row {seen[email_key(email)]}"}],
            )
        else:
            seen[email_key(email)] = parsed.line
            todo.append(parsed)
    progress(len(results))

    db = open_database(settings)
    await db.start()
    try:
        emails = [p.data["email"] for p in todo]
        existing = await db.read(lambda conn: users.existing_emails(conn, clinic_id, emails))
        fresh: list[CsvRow] = []
        for parsed in todo:
            email = str(parsed.data["email"])
            if email_key(email) in existing:
                results[parsed.line] = RowResult(parsed.line, email, "already invited")
            elif dry_run:
                results[parsed.line] = RowResult(parsed.line, email, "would invite")
            else:
                fresh.append(parsed)
        progress(len(todo) - len(fresh))
        for start in range(0, len(fresh), _CHUNK):
            chunk = fresh[start : start + _CHUNK]
            for result in await _invite_chunk(db, settings, actor, chunk):
                results[result.row] = result
            progress(len(chunk))
    finally:
        await db.close()
    return [results[r.line] for r in rows]


async def _invite_chunk(
    db: Database, settings: Settings, actor: Actor, chunk: list[CsvRow]
) -> list[RowResult]:
    now = utcnow()
    items = [InviteItem(actor, p.request, now) for p in chunk if p.request is not None]
    outcomes = await retry_on_integrity_error(
        lambda: db.write(lambda conn: flows.invite_many(conn, settings, items))
    )
    # Someone invited an address between our check and our insert: flows answer a Conflict.
    return [
        RowResult(p.line, item.request.email, "already invited")
        if isinstance(outcome, Conflict)
        else RowResult(p.line, item.request.email, "invited", user_id=outcome["id"])
        for p, item, outcome in zip(chunk, items, outcomes, strict=True)
    ]
