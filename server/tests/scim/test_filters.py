"""Filters: every operator on every attribute we filter on, and, or, not, parentheses, value
paths; anything else a 400 invalidFilter. Each clinic's users are searched in a clinic of
their own, so the expected matches are exact."""

from __future__ import annotations

from typing import Any

import pytest
from scim.scim_support import VIEWER, ScimClinic, assert_error, scim_clinic
from support import Server


@pytest.fixture(scope="module")
def people(server: Server) -> tuple[ScimClinic, dict[str, str]]:
    """Three people in a clinic of their own: their ids by a short name."""
    place = scim_clinic(server, "Filter Clinic")
    specs: dict[str, dict[str, Any]] = {
        "ann": {
            "login": "ann.archer@alpha.example",
            "externalId": "EXT-Ann",
            "name": {"givenName": "Ann", "familyName": "Archer", "middleName": "Q"},
            "phoneNumbers": [{"type": "work", "value": "5550001111"}],
            VIEWER: {"level": "admin", "hasDashboardAccess": True, "clinicRole": "Radiologist"},
        },
        "bob": {
            "login": "bob.baker@beta.example",
            "externalId": "ext-bob",
            "name": {"givenName": "Bob", "familyName": "Baker"},
            VIEWER: {"canManageStudies": True},
        },
        "cy": {
            "login": "cy",
            "emails": [{"value": "cy.cole@alpha.example", "type": "work"}],
            "externalId": None,
            "name": {"givenName": "Cy", "familyName": "Cole"},
        },
    }
    ids = {key: place.create(**spec)["id"] for key, spec in specs.items()}
    assert place.patch(ids["cy"], {"op": "replace", "path": "active", "value": False}).is_success
    return place, ids


CASES = [
    ('userName eq "ANN.ARCHER@alpha.example"', {"ann"}),
    ('userName ne "ann.archer@alpha.example"', {"bob", "cy"}),
    ('userName co "ARCH"', {"ann"}),
    ('userName sw "bob."', {"bob"}),
    ('userName ew "ALPHA.EXAMPLE"', {"ann"}),
    ('userName gt "b"', {"bob", "cy"}),
    ('userName ge "bob.baker@beta.example"', {"bob", "cy"}),
    ('userName lt "b"', {"ann"}),
    ('userName le "cy"', {"ann", "bob", "cy"}),
    ("userName pr", {"ann", "bob", "cy"}),
    ('externalId eq "EXT-Ann"', {"ann"}),
    ('externalId eq "ext-ann"', set()),  # externalId is case-exact
    ('externalId co "-"', {"ann", "bob"}),
    ('externalId sw "ext"', {"bob"}),
    ('externalId ew "Ann"', {"ann"}),
    ('externalId ne "ext-bob"', {"ann", "cy"}),
    ("externalId pr", {"ann", "bob"}),
    ("not (externalId pr)", {"cy"}),
    ('emails.value eq "CY.COLE@alpha.example"', {"cy"}),
    ('emails co "@alpha."', {"ann", "cy"}),
    ('emails[type eq "work"].value ew "beta.example"', {"bob"}),
    ('emails[type eq "work" and value sw "ann"]', {"ann"}),
    ('emails[type eq "home"]', set()),
    ('emails[primary eq true].value sw "bob"', {"bob"}),
    ('phoneNumbers[type eq "work"].value eq "5550001111"', {"ann"}),
    ("phoneNumbers pr", {"ann"}),
    ('name.givenName eq "bob"', {"bob"}),
    ('name.familyName sw "c"', {"cy"}),
    ('name.familyName co "A"', {"ann", "bob"}),
    ('name.middleName eq "q"', {"ann"}),
    ("name.middleName pr", {"ann"}),
    ('name.middleName ne "Q"', {"bob", "cy"}),
    ("active eq true", {"ann", "bob"}),
    ("active eq false", {"cy"}),
    ("active ne true", {"cy"}),
    ("active pr", {"ann", "bob", "cy"}),
    (f'{VIEWER}:level eq "admin"', {"ann"}),
    (f'{VIEWER}:clinicRole eq "Other"', {"bob", "cy"}),
    (f"{VIEWER}:canManageStudies eq true", {"bob"}),
    (f'{VIEWER}:status eq "revoked"', {"cy"}),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "cy"', {"cy"}),
    ('meta.created gt "2000-01-01T00:00:00Z"', {"ann", "bob", "cy"}),
    ('meta.lastModified lt "2000-01-01T00:00:00Z"', set()),
    ('meta.lastModified ge "2000-01-01T00:00:00+00:00"', {"ann", "bob", "cy"}),
    ('name.givenName eq "Ann" or name.givenName eq "Cy"', {"ann", "cy"}),
    ('name.givenName eq "Ann" and active eq true', {"ann"}),
    ('name.givenName eq "Cy" and active eq true', set()),
    ('not (name.givenName eq "Ann") and not (name.givenName eq "Bob")', {"cy"}),
    ('name.givenName eq "Bob" or name.givenName eq "Ann" and active eq false', {"bob"}),
    ('(name.givenName eq "Bob" or name.givenName eq "Ann") and active eq true', {"ann", "bob"}),
    ('USERNAME EQ "cy" OR NOT (ExternalID PR)', {"cy"}),
    ('userName eq "quote\\"in"', set()),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_filter(people: tuple[ScimClinic, dict[str, str]], text: str, expected: set[str]) -> None:
    place, ids = people
    found = place.search(text)
    names = {
        name for name, user_id in ids.items() if user_id in {r["id"] for r in found["Resources"]}
    }
    assert names == expected
    assert found["totalResults"] == len(expected)


BAD = [
    "",
    "userName",
    'userName xx "a"',
    "userName eq",
    'userName eq "a" and',
    '(userName eq "a"',
    'userName eq "a")',
    'title eq "Dr"',
    'name.formatted eq "x"',
    "userName eq 12",
    'active eq "true"',
    "active gt true",
    'meta.created co "2020"',
    'meta.created gt "yesterday"',
    'meta.created gt "2020-01-01T00:00:00"',
    "userName gt null",
    'emails[type eq "work"[value eq "x"]]',
    'not userName eq "a"',
    'userName eq "unterminated',
    'userName eq "a" # comment',
    "(" * 200 + 'userName eq "a"' + ")" * 200,
]


@pytest.mark.parametrize("text", BAD)
def test_unsupported_filters_are_400_invalid_filter(scim: ScimClinic, text: str) -> None:
    response = scim.client.get("/Users", params={"filter": text})
    assert_error(response, 400, "invalidFilter")
