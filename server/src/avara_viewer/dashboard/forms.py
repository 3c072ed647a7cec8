"""Turning the invite and edit forms into the API's wire fields, so that one set of rules,
`fields.validate` with the API's request models, judges them all; and the dashboard's own
check of CSV rows (users.csv_rows reads them)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData

from ..errors import ValidationFailed
from ..fields import WireModel, email_key, validate
from ..users.csv_rows import CsvRow

TEXT_FIELDS = ("firstName", "middleName", "lastName", "suffix1", "suffix2", "phoneNumber")
OPTIONAL_FIELDS = ("middleName", "suffix1", "suffix2", "phoneNumber")
BOOL_FIELDS = ("canManageStudies", "hasDashboardAccess")


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


def mark_taken_and_repeated(rows: list[CsvRow], existing: set[str]) -> None:
    """Refuse valid rows whose address the clinic already has or an earlier row repeats."""
    seen: dict[str, int] = {}
    for row in rows:
        if row.request is None:
            continue
        key = email_key(row.request.email)
        if key in existing:
            row.errors["email"] = "already belongs to a user of this clinic"
        elif key in seen:
            row.errors["email"] = f"is repeated (first on line {seen[key]})"
        else:
            seen[key] = row.line
        if row.errors:
            row.request = None
