"""Turning the invite and edit forms (and CSV rows) into the API's wire fields, so that one
set of rules, `fields.validate` with the API's request models, judges them all."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from ..errors import ValidationFailed
from ..fields import WireModel, email_key, validate

TEXT_FIELDS = ("firstName", "middleName", "lastName", "suffix1", "suffix2", "phoneNumber")
OPTIONAL_FIELDS = ("middleName", "suffix1", "suffix2", "phoneNumber")
BOOL_FIELDS = ("canManageStudies", "hasDashboardAccess")
CSV_COLUMNS = (
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
CSV_MAX_ROWS = 500
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0", ""}


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def wire_from_form(form: FormData, *, with_email: bool) -> dict[str, Any]:
    """The body the API would receive for this form: blank optional fields are left out on
    invite and cleared (null) on edit; unticked boxes are false."""
    data: dict[str, Any] = {}
    if with_email:
        data["email"] = _text(form, "email")
    for name in TEXT_FIELDS:
        value = _text(form, name)
        if value or name not in OPTIONAL_FIELDS:
            data[name] = value
        elif not with_email:
            data[name] = None
    data["clinicRole"] = _text(form, "clinicRole")
    data["level"] = _text(form, "level")
    for name in BOOL_FIELDS:
        data[name] = form.get(name) == "on"
    return data


def check(model: type[WireModel], data: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """(validated request, {}) or (None, {field: message}) with the API's messages."""
    try:
        return validate(model, data), {}
    except ValidationFailed as exc:
        errors: dict[str, str] = {}
        for err in exc.errors or []:
            errors.setdefault(err["field"], err["message"])
        return None, errors


@dataclass
class CsvRow:
    line: int
    data: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    request: Any = None


def _header_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_COLUMN_BY_KEY = {_header_key(c): c for c in CSV_COLUMNS}


def parse_csv(text: str) -> tuple[list[CsvRow], str | None]:
    """Rows of the uploaded CSV as wire bodies, or a message saying why the file is unusable."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return [], "The file is empty."
    except csv.Error as exc:
        return [], f"The file is not valid CSV: {exc}."
    columns = [_COLUMN_BY_KEY.get(_header_key(h)) for h in header]
    unknown = [h for h, c in zip(header, columns, strict=True) if c is None and h.strip()]
    if unknown:
        return [], f"Unknown column(s): {', '.join(unknown)}. Use: {', '.join(CSV_COLUMNS)}."
    missing = [
        c for c in ("email", "firstName", "lastName", "clinicRole", "level") if c not in columns
    ]
    if missing:
        return [], f"Missing column(s): {', '.join(missing)}."
    rows: list[CsvRow] = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(rows) >= CSV_MAX_ROWS:
                return (
                    [],
                    f"The file has more than {CSV_MAX_ROWS} people; split it into smaller files.",
                )
            data: dict[str, Any] = {}
            row_errors: dict[str, str] = {}
            for column, value in zip(columns, values, strict=False):
                if column is None:
                    continue
                value = value.strip()
                if column in BOOL_FIELDS:
                    if value.lower() in _TRUE:
                        data[column] = True
                    elif value.lower() in _FALSE:
                        data[column] = False
                    else:
                        row_errors[column] = "must be true or false"
                elif value or column not in OPTIONAL_FIELDS:
                    data[column] = value
            for column in BOOL_FIELDS:
                data.setdefault(column, False)
            rows.append(CsvRow(line=reader.line_num, data=data, errors=row_errors))
    except csv.Error as exc:
        return [], f"The file is not valid CSV (line {reader.line_num}): {exc}."
    if not rows:
        return [], "The file has a header but no people."
    return rows, None


def validate_rows(model: type[WireModel], rows: list[CsvRow], existing: set[str]) -> None:
    """Fill each row's errors and request: field rules, repeats within the file, addresses
    already in the clinic."""
    seen: dict[str, int] = {}
    for row in rows:
        request, errors = check(model, row.data)
        for name, message in errors.items():
            row.errors.setdefault(name, message)
        if row.errors:
            continue
        row.request = request
        key = email_key(request.email)
        if key in existing:
            row.errors["email"] = "already belongs to a user of this clinic"
        elif key in seen:
            row.errors["email"] = f"is repeated (first on line {seen[key]})"
        else:
            seen[key] = row.line
        if row.errors:
            row.request = None
