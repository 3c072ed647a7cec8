"""Contract fuzzing (bounded): schemathesis against the served /openapi.json, every operation,
valid and invalid data, ids of real users and invitations mixed in (fuzz_hooks.py).
`make fuzz` runs a long version."""

from __future__ import annotations

from pathlib import Path

import httpx
from reliability.fuzzing import run_schemathesis

# Operations whose real work (not only their refusals) the fuzzer must have reached.
REACHED = [
    ("POST", "/v1/viewer/users", "201"),
    ("GET", "/v1/viewer/users", "200"),
    ("GET", "/v1/viewer/users/{userId}", "200"),
    ("PATCH", "/v1/viewer/users/{userId}", "200"),
    ("POST", "/v1/viewer/users/revoke-access", "200"),
    ("GET", "/v1/viewer/users/invitations", "200"),
    ("GET", "/v1/viewer/users/invitations/{invitationId}", "200"),
]


def test_every_operation_survives_fuzzing_and_conforms_to_its_schema(
    fresh_server, tmp_path: Path
) -> None:
    # On both databases: the one 5xx fuzzing found (a NUL in a search) was PostgreSQL's.
    server = fresh_server(None)
    server.start()
    clinic = server.create_clinic("Fuzz Clinic")
    result = run_schemathesis(server.base_url, clinic.key, 25, tmp_path, ["--no-shrink"])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Selected: 20/20" in result.stdout
    metrics = httpx.get(server.base_url + "/metrics").text
    for method, route, status in REACHED:
        assert f'method="{method}",route="{route}",status="{status}"' in metrics
    assert 'status="5' not in metrics
    errors = [line for line in server.log_path.read_text().splitlines() if '"ERROR"' in line]
    assert errors == []
