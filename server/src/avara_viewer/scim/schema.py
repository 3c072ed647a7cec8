"""SCIM names and discovery documents: /ServiceProviderConfig, /ResourceTypes and /Schemas
describe exactly what this service provider does: Users and Groups; patch, filter; no bulk,
sort or etags."""

from __future__ import annotations

from typing import Any

from ..fields import CLINIC_ROLES

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
VIEWER_SCHEMA = "urn:avara:params:scim:schemas:extension:viewer:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

# Page size when the client names none, and the most one page holds.
DEFAULT_COUNT = 100
MAX_RESULTS = 200

# The users API's field names (as its validation errors name them) -> SCIM attribute names.
WIRE_TO_SCIM = {
    "email": "emails",
    "firstName": "name.givenName",
    "middleName": "name.middleName",
    "lastName": "name.familyName",
    "suffix1": "name.honorificSuffix",
    "phoneNumber": "phoneNumbers",
    "clinicRole": f"{VIEWER_SCHEMA}:clinicRole",
    "level": f"{VIEWER_SCHEMA}:level",
    "canManageStudies": f"{VIEWER_SCHEMA}:canManageStudies",
    "hasDashboardAccess": f"{VIEWER_SCHEMA}:hasDashboardAccess",
}


def _attr(
    name: str,
    kind: str = "string",
    *,
    description: str,
    required: bool = False,
    mutability: str = "readWrite",
    uniqueness: str = "none",
    case_exact: bool = False,
    multi: bool = False,
    canonical: tuple[str, ...] = (),
    sub: list[dict[str, Any]] | None = None,
    returned: str = "default",
) -> dict[str, Any]:
    attr: dict[str, Any] = {
        "name": name,
        "type": kind,
        "multiValued": multi,
        "description": description,
        "required": required,
        "mutability": mutability,
        "returned": returned,
    }
    if kind in ("string", "reference"):
        attr["caseExact"] = case_exact
        attr["uniqueness"] = uniqueness
    if canonical:
        attr["canonicalValues"] = list(canonical)
    if sub is not None:
        attr["subAttributes"] = sub
    return attr


USER_ATTRIBUTES = [
    _attr(
        "userName",
        description=(
            "Unique within the clinic, ignoring case. Also the person's email when no "
            "emails are given and it is an address."
        ),
        required=True,
        uniqueness="server",
    ),
    _attr(
        "name",
        "complex",
        description="The person's name; givenName and familyName are required.",
        required=True,
        sub=[
            _attr("formatted", description="The full name.", mutability="readOnly"),
            _attr("givenName", description="First name.", required=True),
            _attr("middleName", description="Middle name."),
            _attr("familyName", description="Last name.", required=True),
            _attr("honorificSuffix", description="Suffix, e.g. MD."),
        ],
    ),
    _attr("displayName", description="As sent; when none was, givenName familyName."),
    _attr(
        "emails",
        "complex",
        multi=True,
        description=(
            "One address: the primary (else work) value given on creation; it cannot be "
            "changed afterwards. Required unless userName is an email address."
        ),
        required=True,
        mutability="immutable",
        sub=[
            _attr("value", description="The address.", mutability="immutable", required=True),
            _attr("type", description="Always work.", canonical=("work",)),
            _attr("primary", "boolean", description="Always true."),
        ],
    ),
    _attr(
        "phoneNumbers",
        "complex",
        multi=True,
        description="One work number: 10 to 15 digits (spaces, +, - and brackets are removed).",
        sub=[
            _attr("value", description="The number."),
            _attr("type", description="work.", canonical=("work",)),
        ],
    ),
    _attr(
        "active",
        "boolean",
        description="false revokes the person's access and ends their sessions; true restores it.",
    ),
]

VIEWER_ATTRIBUTES = [
    _attr(
        "clinicRole",
        description="The person's role; the clinic's default when not given.",
        canonical=CLINIC_ROLES,
        case_exact=True,
    ),
    _attr(
        "level",
        description="admin or member (owner is read-only); the clinic's default when not given.",
        canonical=("admin", "member"),
        case_exact=True,
    ),
    _attr("canManageStudies", "boolean", description="The clinic's default when not given."),
    _attr(
        "hasDashboardAccess",
        "boolean",
        description="Must be true for admins; the clinic's default when not given.",
    ),
    _attr(
        "status",
        description="invited, active or revoked.",
        mutability="readOnly",
        canonical=("invited", "active", "revoked"),
        case_exact=True,
    ),
    _attr(
        "invitedSource",
        description="How the person was first added: api (also SCIM) or dashboard.",
        mutability="readOnly",
        case_exact=True,
    ),
    _attr(
        "scimProvisioned",
        "boolean",
        description="true when a SCIM token created the person.",
        mutability="readOnly",
    ),
]


GROUP_ATTRIBUTES = [
    _attr(
        "displayName",
        description=(
            "Unique within the clinic, ignoring case. The clinic maps a name to what "
            "membership gives (`avara-viewer scim map-group`): level admin, a clinicRole."
        ),
        required=True,
        uniqueness="server",
    ),
    _attr(
        "members",
        "complex",
        multi=True,
        description="People of the clinic (User ids).",
        sub=[
            _attr("value", description="The User's id.", mutability="immutable", case_exact=True),
            _attr("display", description="The User's name.", mutability="readOnly"),
            _attr("$ref", "reference", description="The User's URI.", mutability="readOnly"),
            _attr("type", description="Always User.", canonical=("User",), mutability="readOnly"),
        ],
    ),
]


def _meta(base: str, resource_type: str, path: str) -> dict[str, Any]:
    return {"resourceType": resource_type, "location": f"{base}{path}"}


def service_provider_config(base: str) -> dict[str, Any]:
    return {
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "SCIM token",
                "description": (
                    "Authorization: Bearer <SCIM token>; made with `avara-viewer scim-tokens "
                    "create --clinic ID`. Each token acts inside its clinic."
                ),
                "primary": True,
            }
        ],
        "meta": _meta(base, "ServiceProviderConfig", "/ServiceProviderConfig"),
    }


def user_resource_type(base: str) -> dict[str, Any]:
    return {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "A person of the clinic.",
        "schema": USER_SCHEMA,
        "schemaExtensions": [{"schema": VIEWER_SCHEMA, "required": False}],
        "meta": _meta(base, "ResourceType", "/ResourceTypes/User"),
    }


def group_resource_type(base: str) -> dict[str, Any]:
    return {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "Group",
        "name": "Group",
        "endpoint": "/Groups",
        "description": "A group of the clinic's people; its name may map to a level or role.",
        "schema": GROUP_SCHEMA,
        "meta": _meta(base, "ResourceType", "/ResourceTypes/Group"),
    }


def resource_types(base: str) -> list[dict[str, Any]]:
    return [user_resource_type(base), group_resource_type(base)]


def schemas(base: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": [SCHEMA_SCHEMA],
            "id": USER_SCHEMA,
            "name": "User",
            "description": "A person of the clinic.",
            "attributes": USER_ATTRIBUTES,
            "meta": _meta(base, "Schema", f"/Schemas/{USER_SCHEMA}"),
        },
        {
            "schemas": [SCHEMA_SCHEMA],
            "id": VIEWER_SCHEMA,
            "name": "ViewerUser",
            "description": "Avara Viewer's own fields of a person.",
            "attributes": VIEWER_ATTRIBUTES,
            "meta": _meta(base, "Schema", f"/Schemas/{VIEWER_SCHEMA}"),
        },
        {
            "schemas": [SCHEMA_SCHEMA],
            "id": GROUP_SCHEMA,
            "name": "Group",
            "description": "A group of the clinic's people.",
            "attributes": GROUP_ATTRIBUTES,
            "meta": _meta(base, "Schema", f"/Schemas/{GROUP_SCHEMA}"),
        },
    ]
