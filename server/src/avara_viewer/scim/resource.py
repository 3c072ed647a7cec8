"""The SCIM User as sent (from a users row with its SCIM identity), what a client's User
document asks for (`Desired`), and the `attributes`/`excludedAttributes` projection."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from email_validator import EmailNotValidError, validate_email

from ..clock import rfc3339
from .errors import invalid_syntax, invalid_value
from .schema import USER_SCHEMA, VIEWER_SCHEMA

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_PHONE_PUNCTUATION = re.compile(r"[\s+\-().]")
USER_NAME_MAX = 320
EXTERNAL_ID_MAX = 255
DISPLAY_NAME_MAX = 300

# Our fields in the extension: SCIM name -> the users API's wire name.
VIEWER_FIELDS = {
    "clinicrole": "clinicRole",
    "level": "level",
    "canmanagestudies": "canManageStudies",
    "hasdashboardaccess": "hasDashboardAccess",
}
VIEWER_READ_ONLY = {"status", "invitedsource", "scimprovisioned"}


@dataclass(frozen=True)
class ClinicDefaults:
    """A clinic's SCIM settings (defaults when it has saved none)."""

    activate_without_email: bool = False
    clinic_role: str = "Other"
    level: str = "member"
    can_manage_studies: bool = False
    has_dashboard_access: bool = False

    @classmethod
    def of(cls, row: Any) -> ClinicDefaults:
        if row is None:
            return cls()
        return cls(
            activate_without_email=row["activate_without_email"],
            clinic_role=row["default_clinic_role"],
            level=row["default_level"],
            can_manage_studies=row["default_can_manage_studies"],
            has_dashboard_access=row["default_has_dashboard_access"],
        )

    def wire(self) -> dict[str, Any]:
        return {
            "clinicRole": self.clinic_role,
            "level": self.level,
            "canManageStudies": self.can_manage_studies,
            "hasDashboardAccess": self.has_dashboard_access,
        }


def user_location(base: str, user_id: str) -> str:
    return f"{base}/Users/{user_id}"


def render(row: Any, base: str, *, stored_only: bool = False) -> dict[str, Any]:
    """The full SCIM User of a row from repository.get/search. `stored_only` leaves out the
    values made up for display (displayName, name.formatted), for PATCH to start from."""
    last_modified = row["updated_at"]
    if row["scim_updated_at"] is not None and row["scim_updated_at"] > last_modified:
        last_modified = row["scim_updated_at"]
    name: dict[str, Any] = {
        "formatted": " ".join(
            p for p in (row["first_name"], row["middle_name"], row["last_name"]) if p
        ),
        "givenName": row["first_name"],
        "familyName": row["last_name"],
    }
    if row["middle_name"] is not None:
        name["middleName"] = row["middle_name"]
    if row["suffix1"] is not None:
        name["honorificSuffix"] = row["suffix1"]
    resource: dict[str, Any] = {
        "schemas": [USER_SCHEMA, VIEWER_SCHEMA],
        "id": row["id"],
    }
    if row["scim_external_id"] is not None:
        resource["externalId"] = row["scim_external_id"]
    resource["userName"] = row["scim_user_name"] or row["email"]
    resource["name"] = name
    display_name = row["scim_display_name"]
    if stored_only:
        del name["formatted"]
    elif display_name is None:
        display_name = f"{row['first_name']} {row['last_name']}"
    if display_name is not None:
        resource["displayName"] = display_name
    resource["emails"] = [{"value": row["email"], "type": "work", "primary": True}]
    if row["phone_number"] is not None:
        resource["phoneNumbers"] = [{"value": row["phone_number"], "type": "work"}]
    resource["active"] = row["status"] != "revoked"
    resource[VIEWER_SCHEMA] = {
        "clinicRole": row["clinic_role"],
        "level": row["level"],
        "canManageStudies": row["can_manage_studies"],
        "hasDashboardAccess": row["has_dashboard_access"],
        "status": row["status"],
        "invitedSource": row["invited_source"],
        "scimProvisioned": row["scim_token_id"] is not None,
    }
    resource["meta"] = {
        "resourceType": "User",
        "created": rfc3339(row["created_at"]),
        "lastModified": rfc3339(last_modified),
        "location": user_location(base, row["id"]),
    }
    return resource


# --- reading a client's User document ---------------------------------------------------------


def check_text(value: Any, where: str = "The request body") -> None:
    """Refuse strings no database can store: a NUL, or a lone UTF-16 surrogate (JSON's
    "\\ud800" escape decodes to one). Walks objects and lists."""
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid_value(f"{where} must not contain NUL characters.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid_value(f"{where} must be valid Unicode (no lone surrogates).") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, where)
            check_text(item, f"{key}" if where == "The request body" else f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            check_text(item, where)


def lowered_keys(value: Any, where: str) -> dict[str, Any]:
    """A JSON object with its keys lower-cased (SCIM attribute names ignore case)."""
    if not isinstance(value, dict):
        raise invalid_value(f"{where} must be a JSON object.")
    return {str(k).lower(): v for k, v in value.items()}


def scim_bool(value: Any, where: str) -> bool:
    """A boolean, also in Entra's string form "True"/"False"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid_value(f"{where} must be a boolean (true or false).")


def _text(value: Any, where: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid_value(f"{where} must be a non-empty string.")
    if len(value) > max_length:
        raise invalid_value(f"{where} must be at most {max_length} characters.")
    if _CONTROL.search(value):
        raise invalid_value(f"{where} must not contain control characters.")
    return value


def _optional_text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_value(f"{where} must be a string.")
    return value


def _elements(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise invalid_value(f"{where} must be a list of objects.")
    return [lowered_keys(v, where) for v in value]


def _pick(elements: list[dict[str, Any]], where: str, order: tuple[str, ...]) -> str | None:
    """The value of the first element that is primary, or of the wanted types, in order."""
    for wanted in order:
        for element in elements:
            if wanted == "primary":
                chosen = "primary" in element and scim_bool(element["primary"], where + ".primary")
            else:
                kind = element.get("type")
                chosen = isinstance(kind, str) and kind.lower() == wanted
            if chosen:
                value = element.get("value")
                if not isinstance(value, str):
                    raise invalid_value(f"{where}.value must be a string.")
                return value
    return None


def is_address(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


@dataclass
class Desired:
    """What a POST or PUT (or a patched document) asks for. None: not given; optional name
    parts and the phone are then cleared on a PUT, our extension fields keep their value."""

    user_name: str
    external_id: str | None
    external_id_given: bool
    display_name: str | None
    email: str | None
    first_name: Any
    middle_name: Any
    last_name: Any
    suffix: Any
    phone: str | None
    active: bool | None
    viewer: dict[str, Any] = field(default_factory=dict)

    def invite_wire(self, defaults: ClinicDefaults) -> dict[str, Any]:
        """The users API's invite fields."""
        email = self.email
        if email is None:
            if not is_address(self.user_name):
                raise invalid_value(
                    "emails: give a primary or work address, or a userName that is an email "
                    f"address ({self.user_name!r} is not one)."
                )
            email = self.user_name
        wire: dict[str, Any] = {"email": email, **defaults.wire(), **self.viewer}
        wire.update(self._person())
        return {k: v for k, v in wire.items() if v is not None}

    def update_wire(self) -> dict[str, Any]:
        """The users API's update fields (a full replacement of the person's fields)."""
        return {**self._person(), **self.viewer}

    def _person(self) -> dict[str, Any]:
        required = ((self.first_name, "name.givenName"), (self.last_name, "name.familyName"))
        for value, where in required:
            if value is None:
                raise invalid_value(f"{where} is required.")
        return {
            "firstName": self.first_name,
            "middleName": self.middle_name,
            "lastName": self.last_name,
            "suffix1": self.suffix,
            "phoneNumber": self.phone,
        }


def read_user(document: Any) -> Desired:
    """Read a User document (POST, PUT). Attributes we do not keep (title, addresses, the
    enterprise extension, ...) are ignored; read-only ones (id, meta, ...) too."""
    doc = lowered_keys(document, "The request body")
    schemas = doc.get("schemas")
    if not isinstance(schemas, list) or USER_SCHEMA.lower() not in {
        str(s).lower() for s in schemas
    }:
        raise invalid_syntax(f"schemas must be a list that contains {USER_SCHEMA}.")
    if "username" not in doc or doc["username"] is None:
        raise invalid_value("userName is required.")
    user_name = _text(doc["username"], "userName", USER_NAME_MAX).strip()
    external_id = doc.get("externalid")
    if external_id is not None:
        external_id = _text(external_id, "externalId", EXTERNAL_ID_MAX)
    name = lowered_keys(doc["name"], "name") if doc.get("name") is not None else {}
    emails = _elements(doc.get("emails"), "emails")
    phones = _elements(doc.get("phonenumbers"), "phoneNumbers")
    phone = _pick(phones, "phoneNumbers", ("work", "primary"))
    if phone is not None:
        phone = _PHONE_PUNCTUATION.sub("", phone) or None
    active = scim_bool(doc["active"], "active") if doc.get("active") is not None else None
    viewer: dict[str, Any] = {}
    extension = next((v for k, v in doc.items() if k == VIEWER_SCHEMA.lower()), None)
    if extension is not None:
        for key, value in lowered_keys(extension, VIEWER_SCHEMA).items():
            wire = VIEWER_FIELDS.get(key)
            if wire is None or value is None:
                continue
            where = f"{VIEWER_SCHEMA}:{wire}"
            viewer[wire] = scim_bool(value, where) if wire.startswith(("can", "has")) else value
    return Desired(
        user_name=user_name,
        external_id=external_id,
        external_id_given="externalid" in doc,
        display_name=(
            _text(doc["displayname"], "displayName", DISPLAY_NAME_MAX)
            if doc.get("displayname") is not None
            else None
        ),
        email=_pick(emails, "emails", ("primary", "work")),
        first_name=_optional_text(name.get("givenname"), "name.givenName"),
        middle_name=_optional_text(name.get("middlename"), "name.middleName"),
        last_name=_optional_text(name.get("familyname"), "name.familyName"),
        suffix=_optional_text(name.get("honorificsuffix"), "name.honorificSuffix"),
        phone=phone,
        active=active,
        viewer=viewer,
    )


# --- attributes / excludedAttributes ----------------------------------------------------------

_ALWAYS = ("schemas", "id")


def _split(path: str) -> list[str]:
    """An attribute path as lower-cased keys: [top, sub] or [extension urn, attr, sub]."""
    lowered = path.strip().lower()
    core = USER_SCHEMA.lower()
    viewer = VIEWER_SCHEMA.lower()
    if lowered.startswith(viewer):
        rest = lowered[len(viewer) :].lstrip(":")
        return [viewer, *rest.split(".")] if rest else [viewer]
    if lowered.startswith(core + ":"):
        lowered = lowered[len(core) + 1 :]
    return lowered.split(".")


def _find(doc: dict[str, Any], key: str) -> str | None:
    return next((k for k in doc if k.lower() == key), None)


def _copy_path(source: dict[str, Any], target: dict[str, Any], keys: list[str]) -> None:
    found = _find(source, keys[0])
    if found is None:
        return
    value = source[found]
    if len(keys) == 1:
        target[found] = copy.deepcopy(value)
    elif isinstance(value, dict):
        inner = target.setdefault(found, {})
        _copy_path(value, inner, keys[1:])
    elif isinstance(value, list):
        existing = target.get(found)
        if not isinstance(existing, list):
            existing = target[found] = [{} for _ in value]
        for element, out in zip(value, existing, strict=True):
            if isinstance(element, dict):
                _copy_path(element, out, keys[1:])


def _drop_path(doc: dict[str, Any], keys: list[str]) -> None:
    found = _find(doc, keys[0])
    if found is None or found in _ALWAYS:
        return
    if len(keys) == 1:
        del doc[found]
    elif isinstance(doc[found], dict):
        _drop_path(doc[found], keys[1:])
    elif isinstance(doc[found], list):
        for element in doc[found]:
            if isinstance(element, dict):
                _drop_path(element, keys[1:])


def project(resource: dict[str, Any], attributes: list[str], excluded: list[str]) -> dict[str, Any]:
    """Keep only `attributes` (id and schemas always), or drop `excluded` (RFC 7644 §3.9)."""
    if attributes:
        out: dict[str, Any] = {k: resource[k] for k in _ALWAYS}
        for path in attributes:
            _copy_path(resource, out, _split(path))
        return out
    if excluded:
        out = copy.deepcopy(resource)
        for path in excluded:
            _drop_path(out, _split(path))
        return out
    return resource


def attribute_list(value: str | None) -> list[str]:
    if not value:
        return []
    return [p for p in (part.strip() for part in value.split(",")) if p]
