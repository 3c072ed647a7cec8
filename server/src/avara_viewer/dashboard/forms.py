"""Turning the invite and edit forms into the API's wire fields, so that one set of rules,
`fields.validate` with the API's request models, judges them all; the dashboard's own
words for what those rules refuse; and its check of CSV rows (users.csv_rows reads them)."""

from __future__ import annotations

import re
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


NAME_LABELS = {
    "firstName": "first name",
    "lastName": "last name",
    "middleName": "middle name",
    "suffix1": "suffix",
    "suffix2": "second suffix",
}
_AT_MOST = re.compile(r"at most (\d+) characters")


def plain_message(name: str, message: str, value: Any) -> str:
    """The API's message for a field, said in the form's words with what to do about it.
    Messages the dashboard has no wording for are shown as the API gave them."""
    longest = _AT_MOST.search(message)
    if longest:
        return f"Shorten it to at most {longest.group(1)} characters."
    if "control characters" in message:
        return "Remove the line breaks and invisible characters from it."
    if name in NAME_LABELS:
        return f"Enter the {NAME_LABELS[name]}."
    if name == "email":
        if not value:
            return "Enter the email address the invitation should go to."
        return (
            "This is not a valid email address. Check it for typing mistakes; it should look "
            "like name@clinic.org."
        )
    if name == "phoneNumber":
        return (
            "Enter 10 to 15 digits only, without spaces, dashes or +, for example 5551234567 "
            "— or leave it empty."
        )
    if name == "clinicRole":
        return "Choose the person's clinic role from the list (choose “Other” if none fits)."
    if name == "level":
        if value == "owner":
            return "Owners are added by the server's operator. Choose Member or Administrator."
        return "Choose Member or Administrator."
    if name == "hasDashboardAccess" and "level is admin" in message:
        return (
            "Administrators work in the dashboard: tick “Can use the management dashboard”, "
            "or choose the level Member."
        )
    return message


def check(model: type[WireModel], data: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """(validated request, {}) or (None, {field: message}), each message in the form's words
    (the API keeps its own)."""
    try:
        return validate(model, data), {}
    except ValidationFailed as exc:
        errors: dict[str, str] = {}
        for err in exc.errors or []:
            name = err["field"]
            errors.setdefault(name, plain_message(name, err["message"], data.get(name)))
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
