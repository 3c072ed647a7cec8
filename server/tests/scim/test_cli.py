"""`avara-viewer scim-tokens` and the per-token rate limit."""

from __future__ import annotations

import re

from scim.scim_support import assert_error, new_token, scim_client
from support import Server


def test_create_prints_the_token_alone_and_stores_only_its_hash(server: Server) -> None:
    clinic = server.create_clinic("CLI Clinic")
    made = server.cli("scim-tokens", "create", "--clinic", clinic.id, "--description", "Entra ID")
    token = made.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"scim_[A-Za-z0-9_-]{43}", token)
    assert made.stdout.strip() == token
    assert "/scim/v2" in made.stderr
    stored = server.sql(f"SELECT * FROM scim_tokens WHERE clinic_id = '{clinic.id}'")
    assert len(stored) == 1 and token not in " ".join(str(v) for v in stored[0])
    assert token not in " ".join(
        str(v) for row in server.sql("SELECT * FROM audit_log") for v in row
    )
    assert scim_client(server, token).get("/Users").status_code == 200
    listing = server.cli("scim-tokens", "list", "--clinic", clinic.id).stdout
    assert "Entra ID" in listing and token not in listing


def test_errors_of_the_commands(server: Server) -> None:
    missing = server.cli(
        "scim-tokens", "create", "--clinic", "00000000-0000-4000-8000-000000000000", check=False
    )
    assert missing.returncode == 1 and "No clinic" in missing.stderr and missing.stdout == ""
    unknown = server.cli("scim-tokens", "revoke", "nope", check=False)
    assert unknown.returncode == 1 and "No SCIM token" in unknown.stderr


def test_revoke_is_recorded_and_shown(server: Server) -> None:
    clinic = server.create_clinic("Revoke Clinic")
    _, token_id = new_token(server, clinic.id)
    server.cli("scim-tokens", "revoke", token_id)
    server.cli("scim-tokens", "revoke", token_id)  # twice is fine
    [line] = server.cli("scim-tokens", "list", "--clinic", clinic.id).stdout.strip().splitlines()
    assert line.split("\t")[2].endswith("Z")
    actions = server.sql(
        f"SELECT action FROM audit_log WHERE clinic_id = '{clinic.id}' ORDER BY seq"
    )
    assert actions == [("scim_token.created",), ("scim_token.revoked",)]


def test_each_token_is_rate_limited_on_its_own(fresh_server) -> None:
    server = fresh_server(rate_limit_per_minute="3")
    server.start()
    clinic = server.create_clinic("Busy Clinic")
    busy = scim_client(server, new_token(server, clinic.id)[0])
    calm = scim_client(server, new_token(server, clinic.id)[0])
    answers = [busy.get("/Users") for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert "SCIM token" in assert_error(answers[3], 429)
    assert int(answers[3].headers["retry-after"]) >= 1
    assert calm.get("/Users").status_code == 200
