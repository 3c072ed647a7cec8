"""POST /v1/viewer/users: the seed call and every field rule, accepted and refused."""

from __future__ import annotations

import re
from typing import Any

import pytest
from support import DROP, Clinic, invite_body

ROLES = [
    "Radiologist", "Cardiologist", "Neurologist", "Urologist", "Gynecologist", "Endocrinologist",
    "Doctor", "Surgeon", "Physician", "Physician Assistant", "Nurse Practitioner",
    "Registered Nurse", "Patient Care Coordinator", "Front Desk Operator",
    "Imaging Technologist", "PACS Administrator", "Software Engineer", "Revenue Cycle Manager",
    "Administrative Director", "Administrative Assistant", "Other",
]
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def errors_of(response: Any) -> dict[str, str]:
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    return {e["field"]: e["message"] for e in body.get("errors", [])}


def test_seed_call_creates_an_invited_user(clinic: Clinic) -> None:
    body = invite_body()
    response = clinic.client.post("/v1/viewer/users", json=body)
    assert response.status_code == 201, response.text
    user = response.json()
    assert re.fullmatch(r"usr_[0-9a-f]{32}", user["userId"])
    assert user["email"] == body["email"]
    assert user["firstName"] == "Sarah" and user["lastName"] == "Johnson"
    assert user["clinicRole"] == "Radiologist" and user["level"] == "member"
    assert user["canManageStudies"] is True and user["hasDashboardAccess"] is True
    assert user["invitedSource"] == "api"
    assert user["status"] == "invited"
    assert RFC3339_Z.match(user["createdAt"])
    for optional in ("middleName", "suffix1", "suffix2", "phoneNumber", "lastLoginAt"):
        assert optional in user and user[optional] is None


def test_every_optional_field_is_stored_and_returned(clinic: Clinic) -> None:
    body = invite_body(middleName="Marie", phoneNumber="5551234567", suffix1="MD", suffix2="FACR")
    response = clinic.client.post("/v1/viewer/users", json=body)
    assert response.status_code == 201, response.text
    user = response.json()
    assert (user["middleName"], user["phoneNumber"], user["suffix1"], user["suffix2"]) == (
        "Marie", "5551234567", "MD", "FACR",
    )


def test_explicit_nulls_mean_not_given(clinic: Clinic) -> None:
    body = invite_body(middleName=None, phoneNumber=None, suffix1=None, suffix2=None)
    response = clinic.client.post("/v1/viewer/users", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["middleName"] is None


def test_names_are_trimmed(clinic: Clinic) -> None:
    response = clinic.client.post("/v1/viewer/users", json=invite_body(firstName="  Sarah "))
    assert response.status_code == 201
    assert response.json()["firstName"] == "Sarah"


@pytest.mark.parametrize("role", ROLES)
def test_each_of_the_21_clinic_roles_is_accepted(clinic: Clinic, role: str) -> None:
    response = clinic.client.post("/v1/viewer/users", json=invite_body(clinicRole=role))
    assert response.status_code == 201, response.text
    assert response.json()["clinicRole"] == role


@pytest.mark.parametrize("phone", ["5551234567", "123456789012345"])
def test_phone_numbers_of_10_to_15_digits_are_accepted(clinic: Clinic, phone: str) -> None:
    response = clinic.client.post("/v1/viewer/users", json=invite_body(phoneNumber=phone))
    assert response.status_code == 201, response.text


def test_an_admin_with_dashboard_access_is_accepted(clinic: Clinic) -> None:
    response = clinic.client.post(
        "/v1/viewer/users", json=invite_body(level="admin", hasDashboardAccess=True)
    )
    assert response.status_code == 201, response.text
    assert response.json()["level"] == "admin"


REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    ("firstName missing", {"firstName": DROP}, "firstName", "required"),
    ("firstName empty", {"firstName": ""}, "firstName", "at least 1 character"),
    ("firstName blank", {"firstName": "   "}, "firstName", "at least 1 character"),
    ("firstName number", {"firstName": 42}, "firstName", "string"),
    ("firstName too long", {"firstName": "a" * 101}, "firstName", "at most 100"),
    (
        "firstName line break", {"firstName": "Sarah\r\nBcc: x@evil.example"}, "firstName",
        "line breaks",
    ),
    ("lastName missing", {"lastName": DROP}, "lastName", "required"),
    ("lastName blank", {"lastName": " "}, "lastName", "at least 1 character"),
    ("middleName empty", {"middleName": ""}, "middleName", "at least 1 character"),
    ("suffix1 empty", {"suffix1": ""}, "suffix1", "at least 1 character"),
    ("suffix2 blank", {"suffix2": "  "}, "suffix2", "at least 1 character"),
    ("email missing", {"email": DROP}, "email", "required"),
    ("email without at", {"email": "dr.johnson.hospital.org"}, "email", "not a valid email"),
    ("email without domain", {"email": "dr.johnson@"}, "email", "not a valid email"),
    ("email with spaces", {"email": " dr@hospital.org"}, "email", "spaces"),
    ("email number", {"email": 12}, "email", "string"),
    ("phone too short", {"phoneNumber": "555123456"}, "phoneNumber", "10 to 15 digits"),
    ("phone too long", {"phoneNumber": "5551234567890123"}, "phoneNumber", "10 to 15 digits"),
    ("phone punctuation", {"phoneNumber": "555-123-4567"}, "phoneNumber", "10 to 15 digits"),
    ("phone plus", {"phoneNumber": "+15551234567"}, "phoneNumber", "10 to 15 digits"),
    ("phone as number", {"phoneNumber": 5551234567}, "phoneNumber", "string"),
    ("unknown role", {"clinicRole": "Dentist"}, "clinicRole", "must be one of"),
    ("role wrong case", {"clinicRole": "radiologist"}, "clinicRole", "must be one of"),
    ("role missing", {"clinicRole": DROP}, "clinicRole", "required"),
    ("level owner", {"level": "owner"}, "level", "owner cannot be assigned through the API"),
    ("level unknown", {"level": "superuser"}, "level", "must be one of"),
    ("level missing", {"level": DROP}, "level", "required"),
    ("admin without dashboard", {"level": "admin", "hasDashboardAccess": False},
     "hasDashboardAccess", "must be true when level is admin"),
    ("bool as string", {"canManageStudies": "true"}, "canManageStudies", "JSON boolean"),
    ("bool as number", {"hasDashboardAccess": 1}, "hasDashboardAccess", "JSON boolean"),
    ("bool as null", {"canManageStudies": None}, "canManageStudies", "JSON boolean"),
    ("bool missing", {"hasDashboardAccess": DROP}, "hasDashboardAccess", "required"),
    ("unknown field", {"role": "admin"}, "role", "not a known field"),
    ("snake_case field", {"first_name": "Sarah"}, "first_name", "not a known field"),
]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [pytest.param(o, f, m, id=name) for name, o, f, m in REFUSED],
)
def test_bad_fields_are_refused_with_the_field_named(
    clinic: Clinic, overrides: dict[str, Any], field: str, message: str
) -> None:
    body = invite_body(**overrides)
    response = clinic.client.post("/v1/viewer/users", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert problem["status"] == 422 and problem["title"] and problem["type"]
    errors = errors_of(response)
    assert field in errors, errors
    assert message in errors[field]
    assert field in problem["detail"]


def test_every_bad_field_is_named_at_once(clinic: Clinic) -> None:
    body = invite_body(firstName="", phoneNumber="12", clinicRole="Dentist", extra=1)
    response = clinic.client.post("/v1/viewer/users", json=body)
    assert response.status_code == 422
    assert set(errors_of(response)) == {"firstName", "phoneNumber", "clinicRole", "extra"}


def test_a_refused_invite_stores_nothing(clinic: Clinic, server: Any) -> None:
    body = invite_body(phoneNumber="12")
    assert clinic.client.post("/v1/viewer/users", json=body).status_code == 422
    rows = server.sql(f"SELECT count(*) FROM users WHERE email = '{body['email']}'")
    assert rows[0][0] == 0
