"""Reading people from CSV text: the one reader behind `avara-viewer users import` and the
dashboard's CSV form. Columns are the invite call's wire names; each row is judged by the
invite call's own field rules (fields.validate with UserInviteRequest)."""

from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationFailed
from ..fields import CLINIC_ROLES, validate
from .schemas import UserInviteRequest

COLUMNS = (
    "email",
    "firstName",
    "lastName",
    "clinicRole",
    "level",
    "canManageStudies",
    "hasDashboardAccess",
    "middleName",
    "suffix1",
    "suffix2",
    "phoneNumber",
)
REQUIRED_COLUMNS = ("email", "firstName", "lastName", "clinicRole", "level")
BOOLEAN_COLUMNS = ("canManageStudies", "hasDashboardAccess")
OPTIONAL_COLUMNS = ("middleName", "suffix1", "suffix2", "phoneNumber")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


class CsvFileError(Exception):
    """The file cannot be read at all (not CSV, a wrong header, no people, too many)."""


@dataclass
class CsvRow:
    line: int  # the row's line in the file, the header being line 1
    data: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)  # field -> first message
    request: UserInviteRequest | None = None


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_COLUMN_BY_KEY = {_key(c): c for c in COLUMNS}


def _delimiter(text: str) -> str:
    """";" for files whose header is separated by semicolons (what spreadsheets write where
    the comma is the decimal mark), "," otherwise."""
    header = text.split("\n", 1)[0]
    return ";" if header.count(";") > header.count(",") else ","


def role_suggestion(value: str) -> str | None:
    """The clinic role a mistyped one most likely meant, if any is close."""
    by_key = {_key(r): r for r in CLINIC_ROLES}
    if _key(value) in by_key:
        return by_key[_key(value)]
    close = difflib.get_close_matches(_key(value), list(by_key), n=1, cutoff=0.6)
    return by_key[close[0]] if close else None


def read_people(text: str, *, exact_header: bool, max_rows: int | None = None) -> list[CsvRow]:
    """Every row with its wire body and, if valid, its invite request; raises CsvFileError.

    With exact_header (the command line) the header must use the wire names and name both
    yes/no columns, and a blank yes/no cell is an error; otherwise (the dashboard's form,
    typed by hand) "First name" means firstName and a missing or blank yes/no is false."""
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvFileError("The file is empty.") from None
    except csv.Error as exc:
        raise CsvFileError(f"The file is not valid CSV: {exc}.") from None
    if exact_header:
        columns = [h.strip() if h.strip() in COLUMNS else None for h in header]
        required = (*REQUIRED_COLUMNS, *BOOLEAN_COLUMNS)
    else:
        columns = [_COLUMN_BY_KEY.get(_key(h)) for h in header]
        required = REQUIRED_COLUMNS
    problems = []
    unknown = [h for h, c in zip(header, columns, strict=True) if c is None and h.strip()]
    if unknown:
        problems.append(f"Unknown column(s): {', '.join(unknown)}.")
    missing = [c for c in required if c not in columns]
    if missing:
        problems.append(f"Missing column(s): {', '.join(missing)}.")
    if problems:
        raise CsvFileError(" ".join(problems) + f" Use the API's names: {', '.join(COLUMNS)}.")
    rows: list[CsvRow] = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if max_rows is not None and len(rows) >= max_rows:
                raise CsvFileError(
                    f"The file has more than {max_rows} people; split it into smaller files."
                )
            rows.append(_row(reader.line_num, columns, values, exact_header))
    except csv.Error as exc:
        raise CsvFileError(f"The file is not valid CSV (line {reader.line_num}): {exc}.") from None
    if not rows:
        raise CsvFileError("The file has a header but no people.")
    return rows


def _row(line: int, columns: list[str | None], values: list[str], exact_header: bool) -> CsvRow:
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if len(values) > len(columns):
        errors["row"] = "has more values than the header has columns"
    for column, raw in zip(columns, values, strict=False):
        if column is None:
            continue
        value = raw.strip()
        if column in BOOLEAN_COLUMNS:
            if value.lower() in _TRUE:
                data[column] = True
            elif value.lower() in _FALSE or (value == "" and not exact_header):
                data[column] = False
            elif value != "":
                errors[column] = "must be true or false"
        elif value or column not in OPTIONAL_COLUMNS:
            data[column] = value
    if not exact_header:
        for column in BOOLEAN_COLUMNS:
            data.setdefault(column, False)
    request = None
    try:
        request = validate(UserInviteRequest, data)
    except ValidationFailed as exc:
        for err in exc.errors or [{"field": "row", "message": exc.detail}]:
            message = err["message"]
            if err["field"] == "clinicRole" and data.get("clinicRole"):
                suggestion = role_suggestion(str(data["clinicRole"]))
                if suggestion:
                    message = f"is not a clinic role; did you mean “{suggestion}”?"
            errors.setdefault(err["field"], message)
    return CsvRow(line, data, errors, request if not errors else None)
