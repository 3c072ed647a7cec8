"""PATCH (RFC 7644 §3.5.2) applied to the User document: add, replace and remove, with or
without `path`, `op` in any case, filtered paths (`emails[type eq "work"].value`), and the
path-less replace whose keys are dotted or carry an extension URN (Entra). The patched
document is then stored as a PUT of it would be."""

from __future__ import annotations

import re
from typing import Any

from .errors import ScimError, invalid_path, invalid_syntax, invalid_value, mutability
from .resource import VIEWER_FIELDS, VIEWER_READ_ONLY, lowered_keys
from .schema import PATCH_SCHEMA, USER_SCHEMA, VIEWER_SCHEMA

ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MAX_OPERATIONS = 100

_SIMPLE = {
    "username": "userName",
    "externalid": "externalId",
    "displayname": "displayName",
    "active": "active",
}
_NAME_PARTS = {
    "givenname": "givenName",
    "middlename": "middleName",
    "familyname": "familyName",
    "honorificsuffix": "honorificSuffix",
}
_MULTI = {"emails": "emails", "phonenumbers": "phoneNumbers"}
_ELEMENT_PARTS = {"value": "value", "type": "type", "primary": "primary", "display": "display"}
# Core attributes a client may send that we do not keep: accepted and ignored, so an identity
# provider whose mapping includes them keeps working (docs/scim.md).
_IGNORED = {
    "nickname", "profileurl", "title", "usertype", "preferredlanguage",
    "locale", "timezone", "addresses", "ims", "photos", "x509certificates", "roles",
    "entitlements", "groups", "password", "name.formatted", "name.honorificprefix",
}  # fmt: skip
_READ_ONLY = {"id", "meta", "schemas"}
_PATH = re.compile(r"^(?P<attr>[^\[\]]+?)(?:\[(?P<filter>.*)\](?:\.(?P<sub>[A-Za-z$][\w$-]*))?)?$")
_CONDITION = re.compile(
    r"^\s*(?P<attr>[A-Za-z$][\w$-]*)\s+(?P<op>eq|ne|co|sw|ew)\s+"
    r'(?P<value>"(?:[^"\\]|\\.)*"|true|false)\s*$',
    re.IGNORECASE,
)


def _conditions(text: str, path: str) -> list[tuple[str, str, Any]]:
    """A value filter of the form `a eq "x" and b eq true` (what identity providers send)."""
    out = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        match = _CONDITION.match(part)
        if match is None:
            raise invalid_path(f"Unsupported value filter in path {path!r}.")
        raw = match.group("value")
        value: Any = raw[1:-1] if raw.startswith('"') else raw.lower() == "true"
        attr = _ELEMENT_PARTS.get(match.group("attr").lower())
        if attr is None:
            raise invalid_path(f"Unknown attribute {match.group('attr')!r} in path {path!r}.")
        out.append((attr, match.group("op").lower(), value))
    return out


def _matches(element: dict[str, Any], conditions: list[tuple[str, str, Any]]) -> bool:
    for attr, op, wanted in conditions:
        have = next((v for k, v in element.items() if k.lower() == attr.lower()), None)
        if isinstance(have, str) and isinstance(wanted, str):
            have, wanted = have.lower(), wanted.lower()
        if isinstance(wanted, bool) and isinstance(have, str):
            have = have.lower() == "true"
        ok = {
            "eq": have == wanted,
            "ne": have != wanted,
            "co": isinstance(have, str) and isinstance(wanted, str) and wanted in have,
            "sw": isinstance(have, str) and isinstance(wanted, str) and have.startswith(wanted),
            "ew": isinstance(have, str) and isinstance(wanted, str) and have.endswith(wanted),
        }[op]
        if not ok:
            return False
    return True


class _Patcher:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.viewer: dict[str, Any] = doc.setdefault(VIEWER_SCHEMA, {})

    def apply(self, op: str, path: str | None, value: Any) -> None:
        if path is None:
            if op == "remove":
                raise ScimError(400, "A remove operation needs a path.", "noTarget")
            for key, item in lowered_keys(value, "value (of an operation without path)").items():
                self._apply_key(op, key, item)
            return
        self.at_path(op, path, value)

    def _apply_key(self, op: str, key: str, value: Any) -> None:
        viewer, core = VIEWER_SCHEMA.lower(), USER_SCHEMA.lower()
        if key == viewer:
            for sub, item in lowered_keys(value, VIEWER_SCHEMA).items():
                self._viewer(op, sub, item, f"{VIEWER_SCHEMA}:{sub}")
        elif key == core:
            for sub, item in lowered_keys(value, USER_SCHEMA).items():
                self._apply_key(op, sub, item)
        else:
            self.at_path(op, key, value)

    def at_path(self, op: str, path: str, value: Any) -> None:
        lowered = path.strip().lower()
        viewer, core = VIEWER_SCHEMA.lower(), USER_SCHEMA.lower()
        if lowered.startswith(ENTERPRISE_SCHEMA.lower()):
            return
        if lowered.startswith(viewer):
            rest = lowered[len(viewer) :].lstrip(":")
            if not rest:
                if op == "remove":
                    raise mutability(f"{VIEWER_SCHEMA} cannot be removed.")
                for sub, item in lowered_keys(value, VIEWER_SCHEMA).items():
                    self._viewer(op, sub, item, f"{VIEWER_SCHEMA}:{sub}")
                return
            self._viewer(op, rest, value, path)
            return
        if lowered.startswith(core + ":"):
            path = path.strip()[len(core) + 1 :]
            lowered = lowered[len(core) + 1 :]
        match = _PATH.match(path.strip())
        if match is None:
            raise invalid_path(f"Invalid path {path!r}.")
        attr = match.group("attr").lower()
        if attr in _IGNORED or attr.split(".")[0] in _IGNORED:
            return
        if attr.split(".")[0] in _READ_ONLY:
            raise mutability(f"{match.group('attr')} is read-only.")
        if match.group("filter") is not None:
            self._filtered(op, path, attr, match.group("filter"), match.group("sub"), value)
        elif attr in _SIMPLE:
            self._set(self.doc, _SIMPLE[attr], op, value)
        elif attr == "name":
            self._name(op, value)
        elif attr.startswith("name.") and attr[5:] in _NAME_PARTS:
            self._set(self.doc.setdefault("name", {}), _NAME_PARTS[attr[5:]], op, value)
        elif attr in _MULTI:
            self._multi(op, _MULTI[attr], value)
        elif "." in attr and attr.split(".")[0] in _MULTI and attr.split(".")[1] in _ELEMENT_PARTS:
            # e.g. emails.value: every element's sub-attribute.
            top, sub = _MULTI[attr.split(".")[0]], _ELEMENT_PARTS[attr.split(".")[1]]
            for element in self._list(top):
                self._set(element, sub, op, value)
        else:
            raise invalid_path(f"Unknown attribute in path {path!r}.")

    @staticmethod
    def _set(target: dict[str, Any], key: str, op: str, value: Any) -> None:
        existing = next((k for k in target if k.lower() == key.lower()), key)
        if op == "remove":
            target.pop(existing, None)
        else:
            target.pop(existing, None)
            target[key] = value

    def _name(self, op: str, value: Any) -> None:
        if op == "remove":
            self.doc.pop("name", None)
            return
        name = self.doc.setdefault("name", {})
        for key, item in lowered_keys(value, "name").items():
            if key in _NAME_PARTS:
                self._set(name, _NAME_PARTS[key], op, item)

    def _list(self, top: str) -> list[dict[str, Any]]:
        current = self.doc.get(top)
        if not isinstance(current, list):
            current = self.doc[top] = []
        return current

    def _multi(self, op: str, top: str, value: Any) -> None:
        if op == "remove":
            self.doc.pop(top, None)
            return
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(i, dict) for i in items):
            raise invalid_value(f"{top} must be a list of objects.")
        if op == "replace":
            self.doc[top] = list(items)
        else:
            self._list(top).extend(items)

    def _filtered(
        self, op: str, path: str, attr: str, text: str, sub: str | None, value: Any
    ) -> None:
        if attr not in _MULTI:
            raise invalid_path(f"Only emails and phoneNumbers take a value filter ({path!r}).")
        conditions = _conditions(text, path)
        sub_key = None
        if sub is not None:
            sub_key = _ELEMENT_PARTS.get(sub.lower())
            if sub_key is None:
                raise invalid_path(f"Unknown sub-attribute {sub!r} in path {path!r}.")
        elements = self._list(_MULTI[attr])
        matched = [e for e in elements if _matches(e, conditions)]
        if op == "remove":
            for element in matched:
                if sub_key is None:
                    elements.remove(element)
                else:
                    self._set(element, sub_key, "remove", None)
            return
        if not matched:
            # Nothing matches `[type eq "work"]`: add the element the path describes.
            new = {a: v for a, o, v in conditions if o == "eq"}
            elements.append(new)
            matched = [new]
        for element in matched:
            if sub_key is not None:
                self._set(element, sub_key, op, value)
            else:
                element.update(lowered_keys(value, path) if isinstance(value, dict) else {})

    def _viewer(self, op: str, key: str, value: Any, where: str) -> None:
        key = key.lower()
        if key == "schemas":  # some clients repeat the schema list inside the extension
            return
        if key in VIEWER_READ_ONLY:
            raise mutability(f"{where} is read-only.")
        wire = VIEWER_FIELDS.get(key)
        if wire is None:
            raise invalid_path(f"Unknown attribute {where!r}.")
        if op == "remove":
            raise mutability(f"{where} cannot be removed; replace it instead.")
        self._set(self.viewer, wire, op, value)


def apply(document: dict[str, Any], body: Any) -> dict[str, Any]:
    """The document after the PatchOp request `body`; ScimErrors for bad operations."""
    request = lowered_keys(body, "The request body")
    schemas = request.get("schemas")
    if not isinstance(schemas, list) or PATCH_SCHEMA.lower() not in {
        str(s).lower() for s in schemas
    }:
        raise invalid_syntax(f"schemas must be a list that contains {PATCH_SCHEMA}.")
    operations = request.get("operations")
    if not isinstance(operations, list) or not operations:
        raise invalid_syntax("Operations must be a non-empty list.")
    if len(operations) > MAX_OPERATIONS:
        raise invalid_syntax(f"At most {MAX_OPERATIONS} operations per request.")
    patcher = _Patcher(document)
    for n, raw in enumerate(operations):
        operation = lowered_keys(raw, f"Operations[{n}]")
        op = operation.get("op")
        if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
            raise invalid_syntax(f"Operations[{n}].op must be add, replace or remove.")
        path = operation.get("path")
        if path is not None and (not isinstance(path, str) or not path.strip()):
            raise invalid_path(f"Operations[{n}].path must be a non-empty string.")
        if op.lower() != "remove" and "value" not in operation:
            raise invalid_syntax(f"Operations[{n}] needs a value.")
        patcher.apply(op.lower(), path, operation.get("value"))
    return document
