"""Field rules shared by every call that takes user fields (invite, updates; API, dashboard)."""

from __future__ import annotations

import re
import unicodedata
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
_PHONE = re.compile(r"^[0-9]{10,15}$")
# Unicode categories no name may hold: controls (Cc: C0, DEL, C1 such as U+0085), formats
# (Cf: bidi overrides and isolates U+202A-202E and U+2066-2069, zero-width U+200B-200D,
# U+FEFF) and the line and paragraph separators (Zl, Zp). They reorder or hide what the
# name shows (`Ali\u202ecod.exe` reads as "Aliexe.doc").
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
# Letters by category that draw nothing (the Hangul fillers, U+3164...): refused like formats.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")


# Printable ASCII holds none of the refused categories (its only ones, Cc, are the characters
# str.isprintable refuses) and its letters and digits are A-Z, a-z and 0-9: most names are
# checked by these, in C, instead of one unicodedata look-up per character.
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_ASCII_LETTER_OR_DIGIT = re.compile(r"[A-Za-z0-9]")


def _refuse_invisible(value: str) -> None:
    """ValueError naming the first character of a refused category, as U+XXXX."""
    if value.isascii() and value.isprintable():
        return
    for char in value:
        if unicodedata.category(char) in _REFUSED_CATEGORIES or char in _BLANK_LETTERS:
            raise ValueError(
                "must not contain control characters, line breaks or invisible formatting "
                f"(found U+{ord(char):04X})"
            )


def check_name(value: str, max_length: int, *, digits_count: bool = False) -> str:
    """A person's or clinic's name, trimmed; ValueError with the reason otherwise. Names must
    contain a letter (suffixes such as "2" may be digits: `digits_count`)."""
    value = value.strip()
    if not value:
        raise ValueError("must contain at least 1 character that is not a space")
    if len(value) > max_length:
        raise ValueError(f"must be at most {max_length} characters")
    _refuse_invisible(value)
    if value.isascii():
        found = (_ASCII_LETTER_OR_DIGIT if digits_count else _ASCII_LETTER).search(value)
    else:
        wanted = ("L", "N") if digits_count else ("L",)
        found = any(unicodedata.category(c)[0] in wanted for c in value)
    if not found:
        raise ValueError("must contain a letter" + (" or a digit" if digits_count else ""))
    return value


def _name(max_length: int, *, digits_count: bool = False) -> Any:
    return AfterValidator(lambda value: check_name(value, max_length, digits_count=digits_count))


# The email check below parses the whole address with email-validator, most of whose work is
# the domain. An address whose part before the @ is a plain dot-atom (this subset of RFC
# 5322's atext) and whose domain was already accepted, in an ASCII address, is accepted
# without it: for such an address every rule below depends on the domain alone (the length
# was checked first; ASCII text holds no invisible characters outside the controls, which
# neither part can hold). Anything else takes the full check, so every refusal and its
# message come from it.
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*\Z")
_ACCEPTED_DOMAINS: dict[str, None] = {}
_ACCEPTED_DOMAINS_MAX = 4096


def _email(value: str) -> str:
    if value != value.strip() or not value:
        raise ValueError("must be an email address without surrounding spaces")
    if len(value) > EMAIL_MAX:
        raise ValueError(f"must be at most {EMAIL_MAX} characters")
    local, _, domain = value.rpartition("@")
    if domain in _ACCEPTED_DOMAINS and _PLAIN_LOCAL.match(local):
        return value
    _check_email(value)
    if value.isascii() and _PLAIN_LOCAL.match(local):
        if len(_ACCEPTED_DOMAINS) >= _ACCEPTED_DOMAINS_MAX:
            _ACCEPTED_DOMAINS.clear()
        _ACCEPTED_DOMAINS[domain] = None
    return value


def _check_email(value: str) -> None:
    """The full check of an address (see _email), after its length."""
    _refuse_invisible(value)
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"is not a valid email address: {exc}") from None
    # Refused here rather than acknowledged and then failed by the mailer: a non-ASCII local
    # part can only travel with SMTPUTF8, which the mailer does not use (many servers do not
    # offer it, and a Maildir copy would not match what a server was given).
    if not value.rpartition("@")[0].isascii():
        raise ValueError(
            "must have only ASCII characters before the @: delivering to an address such as "
            "jöhn@… needs SMTPUTF8, which this service's mailer does not use"
        )
    try:
        envelope_address(value)
    except UnicodeError:
        raise ValueError(
            "has a domain with no ASCII (IDNA) form that a mail server would take"
        ) from None


def envelope_address(address: str) -> str:
    """The address as the mailer sends to it: an international domain in its IDNA (xn--)
    form, as the message's To header writes it (email.message). UnicodeError if it has none."""
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def _phone(value: str) -> str:
    if not _PHONE.match(value):
        raise ValueError("must be 10 to 15 digits (0-9), without spaces, '+' or punctuation")
    return value


Name = Annotated[str, _name(NAME_MAX)]
Suffix = Annotated[str, _name(SUFFIX_MAX, digits_count=True)]
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
