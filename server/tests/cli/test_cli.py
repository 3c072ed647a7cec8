"""The operator's command line: migrate, clinics, API keys, owners."""

from __future__ import annotations

import re

import httpx
from support import Server, invite_body

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_clinic_id_and_api_key_are_alone_on_the_last_line(server: Server) -> None:
    clinic = server.cli("clinics", "create", "--name", "Script Clinic")
    clinic_id = clinic.stdout.splitlines()[-1]
    assert UUID.match(clinic_id)
    assert clinic.stdout.strip() == clinic_id  # nothing else on stdout: safe for $(...)
    key = server.cli("api-keys", "create", "--clinic", clinic_id, "--description", "ci")
    secret = key.stdout.splitlines()[-1]
    assert secret.startswith("avk_") and len(secret) >= 40
    response = httpx.post(
        server.base_url + "/v1/viewer/users",
        json=invite_body(),
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 201


def test_an_api_key_for_an_unknown_clinic_is_refused(server: Server) -> None:
    result = server.cli(
        "api-keys", "create", "--clinic", "00000000-0000-4000-8000-000000000000", check=False
    )
    assert result.returncode == 1
    assert "No clinic" in result.stderr
    assert result.stdout == ""


def test_an_empty_clinic_name_is_refused(server: Server) -> None:
    result = server.cli("clinics", "create", "--name", "  ", check=False)
    assert result.returncode == 1
    assert "--name" in result.stderr


def test_migrate_is_safe_to_run_again(server: Server) -> None:
    result = server.cli("migrate")
    assert "up to date" in result.stderr


def test_owners_invite_creates_an_owner_and_queues_the_email(server: Server, smtp_sink) -> None:
    clinic_id = server.cli("clinics", "create", "--name", "Owner Clinic").stdout.splitlines()[-1]
    email = invite_body()["email"]
    result = server.cli(
        "owners", "invite", "--clinic", clinic_id, "--email", email,
        "--first-name", "Olivia", "--last-name", "Owner",
    )
    user_id = result.stdout.splitlines()[-1]
    assert re.fullmatch(r"usr_[0-9a-f]{32}", user_id)
    assert server.sql(f"SELECT level, status FROM users WHERE id = '{user_id}'") == [
        ("owner", "invited")
    ]
    [mail] = smtp_sink.wait_for(email)
    assert "Owner Clinic" in mail.message["Subject"]


def test_owners_invite_reports_bad_fields(server: Server) -> None:
    clinic_id = server.cli("clinics", "create", "--name", "Owner Clinic 2").stdout.splitlines()[-1]
    result = server.cli(
        "owners", "invite", "--clinic", clinic_id, "--email", "not-an-email",
        "--first-name", "Olivia", "--last-name", "Owner", check=False,
    )
    assert result.returncode == 1
    assert "email" in result.stderr


def test_invalid_settings_are_named(server: Server) -> None:
    import os
    import subprocess

    env = dict(server.env, AVARA_VIEWER_INVITATION_TTL="soon")
    result = subprocess.run(
        [os.path.join(os.path.dirname(__import__("sys").executable), "avara-viewer"), "migrate"],
        env=env, capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "invitation_ttl" in result.stderr


def test_demo_makes_a_working_key_and_an_owner_invitation_once(fresh_server) -> None:
    server = fresh_server(None)
    first = server.cli("demo").stdout
    [secret] = re.findall(r"API key \(shown once\): (avk_\S+)", first)
    assert "curl -s" in first and "from avara import Avara" in first
    server.start()
    response = httpx.post(
        server.base_url + "/v1/viewer/users",
        json=invite_body(),
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 201
    assert server.sql("SELECT level, status FROM users WHERE level = 'owner'") == [
        ("owner", "invited")
    ]
    again = server.cli("demo").stdout
    assert "avk_" not in again and "api-keys create" in again
