"""Running schemathesis against a served /openapi.json: shared by test_fuzz.py (bounded) and
bench/reliability/fuzz.py (`make fuzz`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from support import invite_body

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
HERE = Path(__file__).resolve().parent


def seed_objects(client: httpx.Client) -> tuple[list[str], list[str]]:
    """Users and invitations in every state, for the fuzzer to find (see fuzz_hooks.py)."""
    users = []
    for _ in range(6):
        response = client.post("/v1/viewer/users", json=invite_body())
        assert response.status_code == 201, response.text
        users.append(response.json()["userId"])
    changes = [("/v1/viewer/users/revoke-access", users[0]), ("/v1/viewer/users/revoke-access",
               users[1]), ("/v1/viewer/users/reactivate", users[1]),
               ("/v1/viewer/users/invitations/revoke", users[2])]
    for path, user_id in changes:
        response = client.post(path, json={"userId": user_id})
        assert response.is_success, (path, response.status_code, response.text)
    invitations = client.get("/v1/viewer/users/invitations", params={"limit": 100}).json()
    return users, [i["invitationId"] for i in invitations["invitations"]]


def run_schemathesis(
    base_url: str, key: str, max_examples: int, workdir: Path, extra: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}) as client:
        users, invitations = seed_objects(client)
    env = dict(
        os.environ,
        SCHEMATHESIS_HOOKS="fuzz_hooks",
        PYTHONPATH=str(HERE),
        FUZZ_USER_IDS=",".join(users),
        FUZZ_INVITATION_IDS=",".join(invitations),
    )
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{base_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            CHECKS,
            "--mode",
            "all",
            "--max-examples",
            str(max_examples),
            # schemathesis' parallel workers trip a CPython 3.11 bug in compile() here
            "--workers",
            "1",
            *(extra or []),
        ],
        cwd=workdir,  # schemathesis keeps a cache directory in its working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=7200,
    )
