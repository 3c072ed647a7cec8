"""SCIM filters (RFC 7644 §3.4.2.2) translated into a SQL condition on users ⟕ scim_users
(or on scim_groups).

Operators eq ne co sw ew gt ge lt le pr, `and`, `or`, `not (...)`, parentheses, and value
paths (`emails[type eq "work"]`, also Entra's `emails[type eq "work"].value eq "x"`). Every
leaf is written so it is never SQL NULL (absent values compare false, and true for `ne`), so
`not` keeps SCIM's two-valued meaning. Anything else is a 400 invalidFilter naming what.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    false,
    func,
    literal,
    not_,
    or_,
    true,
    type_coerce,
)

from ..db import UTCDateTime
from ..users.models import User
from .errors import ScimError, invalid_filter
from .models import ScimGroup, ScimUser
from .resource import check_text
from .schema import GROUP_SCHEMA, USER_SCHEMA, VIEWER_SCHEMA

users = User.__table__
scim_users = ScimUser.__table__
groups = ScimGroup.__table__

MAX_FILTER_LENGTH = 4096
MAX_DEPTH = 32

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\() | (?P<rparen>\)) | (?P<lbracket>\[) | (?P<rbracket>\]) |
        (?P<string>"(?:[^"\\]|\\.)*") |
        (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w:.$-])) |
        (?P<word>[A-Za-z_$.][\w:.$-]*)
    )""",
    re.VERBOSE,
)
_COMPARE = {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"}


@dataclass(frozen=True)
class Attribute:
    """A filterable attribute: a SQL expression (or a constant, for what every element has,
    like the one email's type) and whether the value exists."""

    name: str
    kind: str  # string | boolean | datetime
    expr: Any = None
    constant: Any = None
    case_exact: bool = False
    lowered: bool = False  # expr already holds the lower-cased value (an indexed column)
    exists: Any = None  # SQL condition; None: always present


def _last_modified() -> Any:
    later = and_(scim_users.c.updated_at.isnot(None), scim_users.c.updated_at > users.c.updated_at)
    return case((later, scim_users.c.updated_at), else_=users.c.updated_at)


def _attributes() -> dict[str, Attribute]:
    phone_exists = users.c.phone_number.isnot(None)
    user_name = func.coalesce(scim_users.c.user_name_lower, users.c.email_lower)
    found = [
        Attribute("id", "string", users.c.id, case_exact=True),
        Attribute("userName", "string", user_name, lowered=True),
        Attribute(
            "externalId",
            "string",
            scim_users.c.external_id,
            case_exact=True,
            exists=scim_users.c.external_id.isnot(None),
        ),
        Attribute("emails.value", "string", users.c.email_lower, lowered=True),
        Attribute("emails.type", "string", constant="work"),
        Attribute("emails.primary", "boolean", constant=True),
        Attribute("phoneNumbers.value", "string", users.c.phone_number, exists=phone_exists),
        Attribute("phoneNumbers.type", "string", constant="work", exists=phone_exists),
        Attribute("name.givenName", "string", users.c.first_name),
        Attribute("name.familyName", "string", users.c.last_name),
        Attribute(
            "name.middleName",
            "string",
            users.c.middle_name,
            exists=users.c.middle_name.isnot(None),
        ),
        Attribute(
            "name.honorificSuffix",
            "string",
            users.c.suffix1,
            exists=users.c.suffix1.isnot(None),
        ),
        Attribute("active", "boolean", users.c.status != "revoked"),
        Attribute("meta.created", "datetime", users.c.created_at),
        Attribute("meta.lastModified", "datetime", _last_modified()),
        Attribute(f"{VIEWER_SCHEMA}:clinicRole", "string", users.c.clinic_role, case_exact=True),
        Attribute(f"{VIEWER_SCHEMA}:level", "string", users.c.level, case_exact=True),
        Attribute(f"{VIEWER_SCHEMA}:status", "string", users.c.status, case_exact=True),
        Attribute(
            f"{VIEWER_SCHEMA}:canManageStudies", "boolean", users.c.can_manage_studies.is_(True)
        ),
        Attribute(
            f"{VIEWER_SCHEMA}:hasDashboardAccess",
            "boolean",
            users.c.has_dashboard_access.is_(True),
        ),
    ]
    table = {a.name.lower(): a for a in found}
    # A multi-valued attribute named without a sub-attribute means its value.
    table["emails"] = table["emails.value"]
    table["phonenumbers"] = table["phonenumbers.value"]
    return table


def _group_attributes() -> dict[str, Attribute]:
    found = [
        Attribute("id", "string", groups.c.id, case_exact=True),
        Attribute("displayName", "string", groups.c.display_name_lower, lowered=True),
        Attribute(
            "externalId",
            "string",
            groups.c.external_id,
            case_exact=True,
            exists=groups.c.external_id.isnot(None),
        ),
        Attribute("meta.created", "datetime", groups.c.created_at),
        Attribute("meta.lastModified", "datetime", groups.c.updated_at),
    ]
    return {a.name.lower(): a for a in found}


@dataclass(frozen=True)
class Resource:
    """What a filter may name: one resource type's attributes, under its core schema URN."""

    core_schema: str
    attributes: dict[str, Attribute]

    def resolve(self, path: str) -> Attribute:
        key = path.lower()
        prefix = self.core_schema.lower() + ":"
        if key.startswith(prefix):
            key = key[len(prefix) :]
        found = self.attributes.get(key)
        if found is None:
            raise invalid_filter(f"Filtering on the attribute {path!r} is not supported.")
        return found


USERS = Resource(USER_SCHEMA, _attributes())
GROUPS = Resource(GROUP_SCHEMA, _group_attributes())


def _string_op(attr: Attribute, op: str, value: str, dialect: str) -> Any:
    if attr.case_exact:
        column, wanted = attr.expr, value
    else:
        column = attr.expr if attr.lowered else func.lower(attr.expr)
        wanted = value.lower()
    if op == "eq":
        return column == wanted
    if op == "ne":
        return column != wanted
    if op == "co":
        position = func.strpos if dialect == "postgresql" else func.instr
        return position(column, wanted) > 0
    if op == "sw":
        return func.substr(column, 1, len(wanted)) == wanted
    if op == "ew":
        return func.substr(column, func.length(column) - len(wanted) + 1) == wanted
    return {"gt": column > wanted, "ge": column >= wanted, "lt": column < wanted}.get(
        op, column <= wanted
    )


def _python_op(op: str, have: Any, value: Any) -> bool:
    if isinstance(have, str) and isinstance(value, str):
        have, value = have.lower(), value.lower()
        if op == "co":
            return value in have
        if op == "sw":
            return have.startswith(value)
        if op == "ew":
            return have.endswith(value)
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "eq": lambda a, b: bool(a == b),
        "ne": lambda a, b: bool(a != b),
        "gt": lambda a, b: bool(a > b),
        "ge": lambda a, b: bool(a >= b),
        "lt": lambda a, b: bool(a < b),
        "le": lambda a, b: bool(a <= b),
    }
    return comparisons[op](have, value)


def _check_value(attr: Attribute, op: str, value: Any) -> Any:
    """The comparison value in the attribute's type, or a 400 saying what is wrong."""
    if value is None:
        if op not in ("eq", "ne"):
            raise invalid_filter(f"{attr.name} {op} null: only eq and ne take null.")
        return None
    if attr.kind == "boolean":
        if not isinstance(value, bool) or op not in ("eq", "ne"):
            raise invalid_filter(f"{attr.name} is a boolean: use eq or ne with true or false.")
        return value
    if not isinstance(value, str):
        raise invalid_filter(f"{attr.name} takes a string value (in double quotes).")
    if attr.kind == "datetime":
        if op in ("co", "sw", "ew"):
            raise invalid_filter(f"{attr.name} is a date-time: use eq, ne, gt, ge, lt or le.")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise invalid_filter(f"{attr.name}: {value!r} is not an RFC 3339 date-time.") from None
        if parsed.tzinfo is None:
            raise invalid_filter(f"{attr.name}: {value!r} needs a time zone (e.g. Z).")
        return parsed
    return value


def compare(attr: Attribute, op: str, value: Any, dialect: str) -> Any:
    """One attribute comparison (`op` eq..le, or pr) as a condition that is never NULL."""
    exists = attr.exists if attr.exists is not None else true()
    if op == "pr":
        return exists
    value = _check_value(attr, op, value)
    if value is None:
        return not_(exists) if op == "eq" else exists
    if attr.constant is not None:
        result = true() if _python_op(op, attr.constant, value) else false()
    elif attr.kind == "boolean":
        result = attr.expr if value == (op == "eq") else not_(attr.expr)
        return and_(exists, result)
    elif attr.kind == "datetime":
        wanted = type_coerce(literal(value), UTCDateTime())
        column = type_coerce(attr.expr, UTCDateTime())
        result = {
            "eq": column == wanted,
            "ne": column != wanted,
            "gt": column > wanted,
            "ge": column >= wanted,
            "lt": column < wanted,
            "le": column <= wanted,
        }[op]
    else:
        result = _string_op(attr, op, value, dialect)
    if op == "ne":
        return or_(not_(exists), result)
    return and_(exists, result)


class _Parser:
    def __init__(self, text: str, dialect: str, resource: Resource) -> None:
        self.dialect = dialect
        self.resource = resource
        self.tokens = self._tokenize(text)
        self.pos = 0
        self.depth = 0

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                raise invalid_filter(
                    f"Unexpected text at position {pos}: {text[pos : pos + 20]!r}."
                )
            kind = match.lastgroup or ""
            raw = match.group(kind)
            value: Any = raw
            if kind == "string":
                try:
                    value = json.loads(raw)
                    check_text(value)
                except ValueError:
                    raise invalid_filter(f"Bad string {raw!r}.") from None
                except ScimError:
                    raise invalid_filter(f"{raw!r} holds a NUL or a lone surrogate.") from None
            elif kind == "number":
                value = json.loads(raw)
            out.append((kind, value))
            pos = match.end()
        return out

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, Any]:
        token = self.peek()
        if token is None:
            raise invalid_filter("The filter ends too early.")
        self.pos += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token and token[0] == "word" and token[1].lower() in words:
            self.pos += 1
            return str(token[1]).lower()
        return None

    def expect(self, kind: str, what: str) -> None:
        token = self.take()
        if token[0] != kind:
            raise invalid_filter(f"Expected {what}, found {token[1]!r}.")

    def parse(self) -> Any:
        condition = self.parse_or(None)
        if self.peek() is not None:
            raise invalid_filter(f"Unexpected {self.peek()[1]!r} after a complete filter.")  # type: ignore[index]
        return condition

    def parse_or(self, base: str | None) -> Any:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise invalid_filter(f"The filter nests deeper than {MAX_DEPTH} levels.")
        terms = [self.parse_and(base)]
        while self.keyword("or"):
            terms.append(self.parse_and(base))
        self.depth -= 1
        return terms[0] if len(terms) == 1 else or_(*terms)

    def parse_and(self, base: str | None) -> Any:
        terms = [self.parse_not(base)]
        while self.keyword("and"):
            terms.append(self.parse_not(base))
        return terms[0] if len(terms) == 1 else and_(*terms)

    def parse_not(self, base: str | None) -> Any:
        if self.keyword("not"):
            self.expect("lparen", "( after not")
            inner = self.parse_or(base)
            self.expect("rparen", ")")
            return not_(inner)
        return self.parse_atom(base)

    def parse_atom(self, base: str | None) -> Any:
        kind, value = self.take()
        if kind == "lparen":
            inner = self.parse_or(base)
            self.expect("rparen", ")")
            return inner
        if kind != "word" or value.lower() in ("and", "or", "not"):
            raise invalid_filter(f"Expected an attribute, found {value!r}.")
        path = f"{base}.{value}" if base else value
        token = self.peek()
        if token is not None and token[0] == "lbracket":
            if base is not None:
                raise invalid_filter("A value filter cannot hold another one.")
            self.pos += 1
            parent = self.resource.resolve(path)
            inner = self.parse_or(path)
            self.expect("rbracket", "]")
            element = and_(parent.exists, inner) if parent.exists is not None else inner
            token = self.peek()
            if token is not None and token[0] == "word" and str(token[1]).startswith("."):
                self.pos += 1
                return and_(element, self.comparison(path + token[1]))
            return element
        return self.comparison(path)

    def comparison(self, path: str) -> Any:
        attr = self.resource.resolve(path)
        op_token = self.take()
        op = str(op_token[1]).lower() if op_token[0] == "word" else ""
        if op == "pr":
            return compare(attr, "pr", None, self.dialect)
        if op not in _COMPARE:
            raise invalid_filter(f"Unknown operator {op_token[1]!r} after {path}.")
        kind, value = self.take()
        if kind == "word":
            literal_word = str(value).lower()
            if literal_word not in ("true", "false", "null"):
                raise invalid_filter(f"Expected a value after {path} {op}, found {value!r}.")
            value = {"true": True, "false": False, "null": None}[literal_word]
        elif kind not in ("string", "number"):
            raise invalid_filter(f"Expected a value after {path} {op}, found {value!r}.")
        return compare(attr, op, value, self.dialect)


def parse(text: str, dialect: str, resource: Resource = USERS) -> ColumnElement[bool]:
    """The SQL condition of a SCIM filter, or a ScimError (400 invalidFilter)."""
    if len(text) > MAX_FILTER_LENGTH:
        raise invalid_filter(f"The filter is longer than {MAX_FILTER_LENGTH} characters.")
    if not text.strip():
        raise invalid_filter("The filter is empty.")
    try:
        return _Parser(text, dialect, resource).parse()  # type: ignore[no-any-return]
    except ScimError:
        raise
    except RecursionError:
        raise invalid_filter("The filter is nested too deeply.") from None
