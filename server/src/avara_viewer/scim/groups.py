"""SCIM Groups. A group is a name and its members; what membership gives is the clinic's
choice, by name (`avara-viewer scim map-group`): level admin (with dashboard access, which
admins need) and/or a clinicRole. Joining a mapped group applies it through
users.service.update_user; leaving the last admin-mapped group makes an admin a member again
(a clinicRole stays). Owners are left alone. Unmapped groups change nobody."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .. import events
from ..actor import Actor
from ..clock import rfc3339
from ..config import Settings
from ..errors import NotFound
from ..fields import CLINIC_ROLES
from ..ids import new_uuid
from ..users import service as users_service
from ..users.models import User
from ..users.schemas import validate_update
from . import repository
from .errors import ScimError, invalid_path, invalid_syntax, invalid_value
from .models import ScimGroup, ScimGroupMapping, ScimGroupMember
from .patch import MAX_OPERATIONS
from .resource import lowered_keys
from .schema import GROUP_SCHEMA, PATCH_SCHEMA

groups = ScimGroup.__table__
members = ScimGroupMember.__table__
mappings = ScimGroupMapping.__table__
users = User.__table__

DISPLAY_NAME_MAX = 300
MAX_MEMBERS = 1000


# --- reading -----------------------------------------------------------------------------------


async def get(conn: AsyncConnection, clinic_id: str, group_id: str) -> Any:
    query = select(groups).where(groups.c.clinic_id == clinic_id, groups.c.id == group_id)
    return (await conn.execute(query)).mappings().first()


async def search(
    conn: AsyncConnection,
    clinic_id: str,
    condition: ColumnElement[bool] | None,
    offset: int,
    limit: int,
) -> tuple[int, Sequence[Any]]:
    return await repository.page_of(
        conn, groups, [groups], groups, groups.c.clinic_id == clinic_id, condition, offset, limit
    )


async def members_of(conn: AsyncConnection, group_ids: list[str]) -> dict[str, list[Any]]:
    """Each group's members (id, first and last name), in a stable order."""
    found: dict[str, list[Any]] = {g: [] for g in group_ids}
    if not group_ids:
        return found
    rows = await conn.execute(
        select(members.c.group_id, users.c.id, users.c.first_name, users.c.last_name)
        .join(users, users.c.id == members.c.user_id)
        .where(members.c.group_id.in_(group_ids))
        .order_by(members.c.group_id, users.c.id)
    )
    for row in rows:
        found[row.group_id].append(row)
    return found


def render(row: Any, people: list[Any], base: str) -> dict[str, Any]:
    resource: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": row["id"]}
    if row["external_id"] is not None:
        resource["externalId"] = row["external_id"]
    resource["displayName"] = row["display_name"]
    resource["members"] = [
        {
            "value": p.id,
            "display": f"{p.first_name} {p.last_name}",
            "$ref": f"{base}/Users/{p.id}",
            "type": "User",
        }
        for p in people
    ]
    resource["meta"] = {
        "resourceType": "Group",
        "created": rfc3339(row["created_at"]),
        "lastModified": rfc3339(row["updated_at"]),
        "location": f"{base}/Groups/{row['id']}",
    }
    return resource


# --- what a client asks for ----------------------------------------------------------------------


def _member_ids(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    ids: list[str] = []
    for item in items:
        element = lowered_keys(item, "members")
        member = element.get("value")
        if not isinstance(member, str) or not member:
            raise invalid_value("members: each member needs a value (a User id).")
        if member not in ids:
            ids.append(member)
    if len(ids) > MAX_MEMBERS:
        raise invalid_value(f"members: at most {MAX_MEMBERS} in one request.")
    return ids


def read_group(document: Any) -> tuple[str, str | None, bool, list[str]]:
    """(displayName, externalId, whether externalId was given, member ids) of a Group."""
    doc = lowered_keys(document, "The request body")
    schemas = doc.get("schemas")
    if not isinstance(schemas, list) or GROUP_SCHEMA.lower() not in {
        str(s).lower() for s in schemas
    }:
        raise invalid_syntax(f"schemas must be a list that contains {GROUP_SCHEMA}.")
    name = doc.get("displayname")
    if not isinstance(name, str) or not name.strip():
        raise invalid_value("displayName is required.")
    if len(name) > DISPLAY_NAME_MAX:
        raise invalid_value(f"displayName must be at most {DISPLAY_NAME_MAX} characters.")
    external_id = doc.get("externalid")
    if external_id is not None and (not isinstance(external_id, str) or len(external_id) > 255):
        raise invalid_value("externalId must be a string of at most 255 characters.")
    return name.strip(), external_id, "externalid" in doc, _member_ids(doc.get("members"))


# --- what membership gives ------------------------------------------------------------------------


async def _mapping(conn: AsyncConnection, clinic_id: str, name_lower: str) -> Any:
    query = select(mappings).where(
        mappings.c.clinic_id == clinic_id, mappings.c.display_name_lower == name_lower
    )
    return (await conn.execute(query)).mappings().first()


async def _grant(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    level: str | None,
    clinic_role: str | None,
    user_ids: list[str],
    now: datetime,
) -> None:
    for user_id in user_ids:
        person = await users_service.get_user(conn, actor.clinic_id, user_id)
        if person["level"] == "owner":
            continue
        change: dict[str, Any] = {}
        if level == "admin" and person["level"] != "admin":
            change = {"level": "admin", "hasDashboardAccess": True}
        if clinic_role is not None and person["clinic_role"] != clinic_role:
            change["clinicRole"] = clinic_role
        if change:
            update = validate_update(change)
            await users_service.update_user(conn, settings, actor, user_id, update, now=now)


async def _revoke_admin(
    conn: AsyncConnection, settings: Settings, actor: Actor, user_ids: list[str], now: datetime
) -> None:
    """Admins who are in no admin-mapped group (as the tables now say) become members."""
    for user_id in user_ids:
        still = await conn.execute(
            select(members.c.group_id)
            .join(groups, groups.c.id == members.c.group_id)
            .join(
                mappings,
                (mappings.c.clinic_id == groups.c.clinic_id)
                & (mappings.c.display_name_lower == groups.c.display_name_lower),
            )
            .where(members.c.user_id == user_id, mappings.c.level == "admin")
            .limit(1)
        )
        if still.first() is not None:
            continue
        person = await users_service.get_user(conn, actor.clinic_id, user_id)
        if person["level"] == "admin":
            update = validate_update({"level": "member"})
            await users_service.update_user(conn, settings, actor, user_id, update, now=now)


async def _effects(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    *,
    left: tuple[str, list[str]] | None,
    joined: tuple[str, list[str]] | None,
    now: datetime,
) -> None:
    """Apply membership changes already written: `left` = (old name, people who left it),
    `joined` = (name, people who joined it)."""
    if left is not None and left[1]:
        mapping = await _mapping(conn, actor.clinic_id, left[0])
        if mapping is not None and mapping["level"] == "admin":
            await _revoke_admin(conn, settings, actor, left[1], now)
    if joined is not None and joined[1]:
        mapping = await _mapping(conn, actor.clinic_id, joined[0])
        if mapping is not None:
            await _grant(
                conn, settings, actor, mapping["level"], mapping["clinic_role"], joined[1], now
            )


# --- changing -----------------------------------------------------------------------------------


def _taken(name: str) -> ScimError:
    return ScimError(
        409,
        f"displayName: a group named {name!r} exists.",
        "uniqueness",
        {"x-should-retry": "false"},
    )


async def _check(
    conn: AsyncConnection, clinic_id: str, name: str, member_ids: list[str], group_id: str | None
) -> None:
    owner = (
        await conn.execute(
            select(groups.c.id).where(
                groups.c.clinic_id == clinic_id, groups.c.display_name_lower == name.lower()
            )
        )
    ).scalar()
    if owner is not None and owner != group_id:
        raise _taken(name)
    if member_ids:
        known = set(
            (
                await conn.execute(
                    select(users.c.id).where(
                        users.c.clinic_id == clinic_id, users.c.id.in_(member_ids)
                    )
                )
            ).scalars()
        )
        unknown = [m for m in member_ids if m not in known]
        if unknown:
            raise invalid_value(f"members: no user {', '.join(unknown[:5])} in this clinic.")


async def _record(
    conn: AsyncConnection, actor: Actor, group_id: str, changes: dict[str, Any], now: datetime
) -> None:
    await events.emit(
        conn,
        events.DomainEvent(events.SCIM_GROUP_CHANGED, actor, "scim_group", group_id, changes, now),
    )


async def create(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    document: Any,
    now: datetime,
) -> str:
    name, external_id, _, member_ids = read_group(document)
    await _check(conn, actor.clinic_id, name, member_ids, None)
    group_id = new_uuid()
    await conn.execute(
        groups.insert().values(
            id=group_id,
            clinic_id=actor.clinic_id,
            display_name=name,
            display_name_lower=name.lower(),
            external_id=external_id,
            created_at=now,
            updated_at=now,
        )
    )
    if member_ids:
        await conn.execute(
            members.insert(), [{"group_id": group_id, "user_id": m} for m in member_ids]
        )
    await _record(conn, actor, group_id, {"displayName": name, "membersAdded": member_ids}, now)
    await _effects(conn, settings, actor, left=None, joined=(name.lower(), member_ids), now=now)
    return group_id


async def replace(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    group_id: str,
    document: Any,
    now: datetime,
) -> None:
    current = await get(conn, actor.clinic_id, group_id)
    if current is None:
        raise ScimError(404, f"No group with id {group_id} in this clinic.")
    name, external_id, external_given, member_ids = read_group(document)
    await _check(conn, actor.clinic_id, name, member_ids, group_id)
    before = [p.id for p in (await members_of(conn, [group_id]))[group_id]]
    if not external_given:
        external_id = current["external_id"]
    renamed = name.lower() != current["display_name_lower"]
    added = [m for m in member_ids if m not in before]
    removed = [m for m in before if m not in member_ids]
    changes: dict[str, Any] = {}
    if name != current["display_name"]:
        changes["displayName"] = {"before": current["display_name"], "after": name}
    if external_id != current["external_id"]:
        changes["externalId"] = {"before": current["external_id"], "after": external_id}
    if added:
        changes["membersAdded"] = added
    if removed:
        changes["membersRemoved"] = removed
    if not changes:
        return
    await conn.execute(
        update(groups)
        .where(groups.c.id == group_id)
        .values(
            display_name=name,
            display_name_lower=name.lower(),
            external_id=external_id,
            updated_at=now,
        )
    )
    if removed:
        await conn.execute(
            delete(members).where(members.c.group_id == group_id, members.c.user_id.in_(removed))
        )
    if added:
        await conn.execute(members.insert(), [{"group_id": group_id, "user_id": m} for m in added])
    await _record(conn, actor, group_id, changes, now)
    # A rename moves everyone from the old name's mapping to the new one's.
    await _effects(
        conn,
        settings,
        actor,
        left=(current["display_name_lower"], before if renamed else removed),
        joined=(name.lower(), member_ids if renamed else added),
        now=now,
    )


def _patch_members(current: list[str], op: str, path_filter: str | None, value: Any) -> list[str]:
    if op == "remove":
        if path_filter is not None:
            wanted = _value_filter(path_filter)
            return [m for m in current if m != wanted]
        if value is None:
            return []
        gone = set(_member_ids(value))  # Entra names the members to remove in `value`
        return [m for m in current if m not in gone]
    if path_filter is not None:
        raise invalid_path("members[...] takes only remove.")
    given = _member_ids(value)
    if op == "replace":
        return given
    return current + [m for m in given if m not in current]


def _value_filter(text: str) -> str:
    match = re.fullmatch(r'\s*value\s+eq\s+"([^"\\]*)"\s*', text, flags=re.IGNORECASE)
    if match is None:
        raise invalid_path(f'Only members[value eq "<id>"] is supported, not {text!r}.')
    return match.group(1)


async def patch(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    group_id: str,
    body: Any,
    now: datetime,
) -> None:
    current = await get(conn, actor.clinic_id, group_id)
    if current is None:
        raise ScimError(404, f"No group with id {group_id} in this clinic.")
    request = lowered_keys(body, "The request body")
    schemas = request.get("schemas")
    if not isinstance(schemas, list) or PATCH_SCHEMA.lower() not in {
        str(s).lower() for s in schemas
    }:
        raise invalid_syntax(f"schemas must be a list that contains {PATCH_SCHEMA}.")
    operations = request.get("operations")
    if not isinstance(operations, list) or not operations or len(operations) > MAX_OPERATIONS:
        raise invalid_syntax(f"Operations must be a list of 1 to {MAX_OPERATIONS} operations.")
    name, external_id = current["display_name"], current["external_id"]
    member_ids = [p.id for p in (await members_of(conn, [group_id]))[group_id]]
    for n, raw in enumerate(operations):
        operation = lowered_keys(raw, f"Operations[{n}]")
        op = operation.get("op")
        if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
            raise invalid_syntax(f"Operations[{n}].op must be add, replace or remove.")
        op = op.lower()
        path = operation.get("path")
        value = operation.get("value")
        if op != "remove" and "value" not in operation:
            raise invalid_syntax(f"Operations[{n}] needs a value.")
        if path is None:
            if op == "remove":
                raise ScimError(400, "A remove operation needs a path.", "noTarget")
            targets = lowered_keys(value, f"Operations[{n}].value").items()
        elif not isinstance(path, str) or not path.strip():
            raise invalid_path(f"Operations[{n}].path must be a non-empty string.")
        else:
            targets = [(path.strip(), value)]
        for target, item in targets:
            if target.lower().startswith(GROUP_SCHEMA.lower() + ":"):
                target = target[len(GROUP_SCHEMA) + 1 :]
            key = target.lower()
            if key == "members" or key.startswith("members["):
                inner = target[len("members[") : -1] if key != "members" else None
                if inner is not None and not key.endswith("]"):
                    raise invalid_path(f"Invalid path {target!r}.")
                member_ids = _patch_members(member_ids, op, inner, item)
            elif key == "displayname":
                if op == "remove":
                    raise invalid_value("displayName is required.")
                name = item
            elif key == "externalid":
                external_id = None if op == "remove" else item
            elif key in ("id", "meta", "schemas"):
                raise ScimError(400, f"{key} is read-only.", "mutability")
            else:
                raise invalid_path(f"Unknown attribute {key!r}.")
    document: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "displayName": name,
        "externalId": external_id,
        "members": [{"value": m} for m in member_ids],
    }
    await replace(conn, settings, actor, group_id, document, now)


async def delete_group(
    conn: AsyncConnection, settings: Settings, actor: Actor, group_id: str, now: datetime
) -> None:
    current = await get(conn, actor.clinic_id, group_id)
    if current is None:
        raise ScimError(404, f"No group with id {group_id} in this clinic.")
    before = [p.id for p in (await members_of(conn, [group_id]))[group_id]]
    await conn.execute(delete(members).where(members.c.group_id == group_id))
    await conn.execute(delete(groups).where(groups.c.id == group_id))
    await _record(conn, actor, group_id, {"deleted": current["display_name"]}, now)
    await _effects(
        conn, settings, actor, left=(current["display_name_lower"], before), joined=None, now=now
    )


async def forget_member(conn: AsyncConnection, user_id: str) -> None:
    """Take a person out of every group (before they are erased)."""
    await conn.execute(delete(members).where(members.c.user_id == user_id))


# --- the clinic's mapping (command line) ----------------------------------------------------------


async def map_group(
    conn: AsyncConnection,
    settings: Settings,
    clinic_id: str,
    name: str,
    level: str | None,
    clinic_role: str | None,
    now: datetime,
) -> None:
    """Say what membership of the group named `name` gives (None: nothing), and apply it to
    the group's present members."""
    from ..clinics.service import clinic_name

    if await clinic_name(conn, clinic_id) is None:
        raise NotFound(f"No clinic with id {clinic_id}.")
    if level not in (None, "admin"):
        raise invalid_value("level must be admin (or none).")
    if clinic_role is not None and clinic_role not in CLINIC_ROLES:
        raise invalid_value(f"clinicRole {clinic_role!r} is not a ClinicRole.")
    lowered = name.strip().lower()
    before = await _mapping(conn, clinic_id, lowered)
    await conn.execute(
        delete(mappings).where(
            mappings.c.clinic_id == clinic_id, mappings.c.display_name_lower == lowered
        )
    )
    if level is not None or clinic_role is not None:
        await conn.execute(
            mappings.insert().values(
                clinic_id=clinic_id,
                display_name_lower=lowered,
                level=level,
                clinic_role=clinic_role,
            )
        )
    actor = Actor(clinic_id=clinic_id, kind="cli", id=None)
    group_id = (
        await conn.execute(
            select(groups.c.id).where(
                groups.c.clinic_id == clinic_id, groups.c.display_name_lower == lowered
            )
        )
    ).scalar()
    await events.emit(
        conn,
        events.DomainEvent(
            events.SCIM_GROUP_CHANGED,
            actor,
            "scim_group",
            group_id,
            {"mapping": {"displayName": name, "level": level, "clinicRole": clinic_role}},
            now,
        ),
    )
    if group_id is None:
        return
    people = [p.id for p in (await members_of(conn, [group_id]))[group_id]]
    if before is not None and before["level"] == "admin" and level != "admin":
        await _revoke_admin(conn, settings, actor, people, now)
    await _grant(conn, settings, actor, level, clinic_role, people, now)
