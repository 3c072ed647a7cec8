"""Field rules shared by every call that takes user fields (invite, updates; API, dashboard)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from .errors import ValidationFailed, field_errors

ClinicRole = Literal[
    "Radiologist",
    "Cardiologist",
    "Neurologist",
    "Urologist",
    "Gynecologist",
    "Endocrinologist",
    "Doctor",
    "Surgeon",
    "Physician",
    "Physician Assistant",
    "Nurse Practitioner",
    "Registered Nurse",
    "Patient Care Coordinator",
    "Front Desk Operator",
    "Imaging Technologist",
    "PACS Administrator",
    "Software Engineer",
    "Revenue Cycle Manager",
    "Administrative Director",
    "Administrative Assistant",
    "Other",
]
CLINIC_ROLES: tuple[str, ...] = get_args(ClinicRole)
AssignableLevel = Literal["admin", "member"]
UserLevel = Literal["owner", "admin", "member"]
InvitedSource = Literal["dashboard", "api"]
UserStatus = Literal["invited", "active", "revoked"]
InvitationStatus = Literal["sent", "accepted", "rejected", "revoked"]

NAME_MAX = 100
SUFFIX_MAX = 20
EMAIL_MAX = 254
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_PHONE = re.compile(r"^[0-9]{10,15}$")


def _name(max_length: int) -> Any:
    def check(value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must contain at least 1 character that is not a space")
        if len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        if _CONTROL.search(value):
            raise ValueError("must not contain control characters or line breaks")
        return value

    return AfterValidator(check)


def _email(value: str) -> str:
    if value != value.strip() or not value:
        raise ValueError("must be an email address without surrounding spaces")
    if len(value) > EMAIL_MAX:
        raise ValueError(f"must be at most {EMAIL_MAX} characters")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"is not a valid email address: {exc}") from None
    return value


def _phone(value: str) -> str:
    if not _PHONE.match(value):
        raise ValueError("must be 10 to 15 digits (0-9), without spaces, '+' or punctuation")
    return value


Name = Annotated[str, _name(NAME_MAX)]
Suffix = Annotated[str, _name(SUFFIX_MAX)]
Email = Annotated[str, AfterValidator(_email)]
Phone = Annotated[str, AfterValidator(_phone)]


def email_key(email: str) -> str:
    """The form in which addresses are compared: case-insensitive."""
    return email.lower()


class WireModel(BaseModel):
    """camelCase on the wire, unknown fields refused, no coercion of booleans or numbers."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=False,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        strict=True,
    )


def validate(model: type[WireModel], data: dict[str, Any]) -> Any:
    """Validate a request body and raise one 422 naming every bad field."""
    errors: list[dict[str, str]] = []
    result = None
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(list(exc.errors()))
    for err in errors:
        if err["field"] == "level" and data.get("level") == "owner":
            err["message"] = (
                "owner cannot be assigned through the API; owners are invited by an operator "
                "with `avara-viewer owners invite`"
            )
    if data.get("level") == "admin" and data.get("hasDashboardAccess") is False:
        errors.append(
            {
                "field": "hasDashboardAccess",
                "message": "must be true when level is admin",
            }
        )
    if errors:
        names = ", ".join(dict.fromkeys(e["field"] for e in errors))
        raise ValidationFailed(f"Invalid fields: {names}.", errors=errors)
    return result
