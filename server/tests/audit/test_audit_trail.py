"""The audit trail: what each change records, the hash chain under concurrency, no secrets,
`avara-viewer audit verify` catching tampering, and `audit export` as CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from support import Clinic, Server, invite_body
from users.rawsql import accept_invitation, execute, expire_invitation

INV = "/v1/viewer/users/invitations"


def _entries(server: Server, clinic_id: str) -> list[dict]:
    rows = server.sql(
        "SELECT seq, actor_type, actor_id, action, target_type, target_id, changes, request_id,"
        f" prev_hash, hash FROM audit_log WHERE clinic_id = '{clinic_id}' ORDER BY seq"
    )
    names = (
        "seq",
        "actorType",
        "actorId",
        "action",
        "targetType",
        "targetId",
        "changes",
        "requestId",
        "prevHash",
        "hash",
    )
    return [dict(zip(names, r, strict=True)) | {"changes": json.loads(r[6])} for r in rows]


@pytest.fixture
def fresh_clinic(server: Server) -> Clinic:
    return server.create_clinic("Audited Clinic")


def test_every_change_is_recorded_with_actor_target_changes_and_request_id(
    server: Server, fresh_clinic: Clinic
) -> None:
    c = fresh_clinic.client
    rid = {"X-Request-Id": "req-42"}
    user = c.post("/v1/viewer/users", json=invite_body(firstName="Ann"), headers=rid).json()
    uid = user["userId"]
    [inv] = c.get(INV, params={"userId": uid}).json()["invitations"]
    iid = inv["invitationId"]
    assert (
        c.patch(f"/v1/viewer/users/{uid}", json={"firstName": "Anne", "suffix1": "Jr."}).status_code
        == 200
    )
    assert (
        c.patch(f"/v1/viewer/users/{uid}", json={"firstName": "Anne"}).status_code == 200
    )  # no change
    assert c.patch(f"{INV}/{iid}", json={"clinicRole": "Surgeon"}).status_code == 200
    expire_invitation(server, iid)
    assert c.post(f"{INV}/{iid}/resend").status_code == 200
    assert c.post(f"{INV}/revoke", json={"invitationId": iid}).status_code == 200
    assert c.post("/v1/viewer/users/reactivate", json={"userId": uid}).status_code == 200
    accept_invitation(server, uid)
    assert c.post("/v1/viewer/users/revoke-access", json={"userId": uid}).status_code == 200

    entries = _entries(server, fresh_clinic.id)
    assert [e["action"] for e in entries] == [
        "user.invited",
        "user.updated",
        "invitation.updated",
        "invitation.resent",
        "invitation.revoked",
        "user.reactivated",
        "user.access_revoked",
    ]
    assert [e["seq"] for e in entries] == list(range(1, 8))
    [(key_id,)] = server.sql(f"SELECT id FROM api_keys WHERE clinic_id = '{fresh_clinic.id}'")
    assert {(e["actorType"], e["actorId"]) for e in entries} == {("api_key", key_id)}
    assert entries[0]["requestId"] == "req-42" and entries[1]["requestId"] != "req-42"
    assert entries[0]["changes"]["firstName"] == {"before": None, "after": "Ann"}
    assert entries[0]["changes"]["invitationId"]["after"] == iid
    assert entries[1]["changes"] == {
        "firstName": {"before": "Ann", "after": "Anne"},
        "suffix1": {"before": None, "after": "Jr."},
    }
    assert (entries[1]["targetType"], entries[1]["targetId"]) == ("user", uid)
    assert entries[2]["changes"] == {"clinicRole": {"before": "Radiologist", "after": "Surgeon"}}
    assert (entries[2]["targetType"], entries[2]["targetId"]) == ("invitation", iid)
    assert set(entries[3]["changes"]) == {"expiry"}
    assert entries[4]["changes"]["status"] == {"before": "sent", "after": "revoked"}
    assert entries[5]["changes"]["status"] == {"before": "revoked", "after": "invited"}
    assert entries[6]["changes"]["status"] == {"before": "active", "after": "revoked"}
    for previous, entry in itertools.pairwise(entries):
        assert entry["prevHash"] == previous["hash"]
    assert entries[0]["prevHash"] == "0" * 64


def test_refused_changes_leave_no_entry(server: Server, fresh_clinic: Clinic) -> None:
    c = fresh_clinic.client
    user = c.post("/v1/viewer/users", json=invite_body()).json()
    c.patch(f"/v1/viewer/users/{user['userId']}", json={"phoneNumber": "1"})
    c.post("/v1/viewer/users/reactivate", json={"userId": user["userId"]})
    c.post("/v1/viewer/users", json=invite_body(email=user["email"]))
    assert [e["action"] for e in _entries(server, fresh_clinic.id)] == ["user.invited"]


def test_no_secrets_in_the_trail(server: Server, fresh_clinic: Clinic) -> None:
    c = fresh_clinic.client
    for _ in range(3):
        user = c.post("/v1/viewer/users", json=invite_body()).json()
        c.post("/v1/viewer/users/revoke-access", json={"userId": user["userId"]})
        c.post("/v1/viewer/users/reactivate", json={"userId": user["userId"]})
    trail = " ".join(str(v) for row in server.sql("SELECT * FROM audit_log") for v in row)
    secrets = [fresh_clinic.key, fresh_clinic.key[4:16]]
    secrets += [
        v for row in server.sql("SELECT token_nonce, token_hash FROM invitations") for v in row
    ]
    secrets += [v for (v,) in server.sql("SELECT key_hash FROM api_keys")]
    secrets += [v for (v,) in server.sql("SELECT payload FROM email_outbox")]
    for secret in secrets:
        assert secret not in trail


async def _invite_all(server: Server, key: str, n: int) -> list[int]:
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/viewer/users", json=invite_body()) for _ in range(n))
        )
    return [r.status_code for r in responses]


def test_the_chain_stays_whole_under_concurrent_invites(
    server: Server, fresh_clinic: Clinic
) -> None:
    other = server.create_clinic("Concurrent Neighbour")

    async def both() -> list[list[int]]:
        return list(
            await asyncio.gather(
                _invite_all(server, fresh_clinic.key, 40), _invite_all(server, other.key, 20)
            )
        )

    statuses = asyncio.run(both())
    assert statuses == [[201] * 40, [201] * 20]
    assert [e["seq"] for e in _entries(server, fresh_clinic.id)] == list(range(1, 41))
    assert [e["seq"] for e in _entries(server, other.id)] == list(range(1, 21))
    result = server.cli("audit", "verify")
    assert result.returncode == 0, result.stderr
    assert "intact" in result.stderr


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE audit_log SET changes = '{{}}' WHERE clinic_id = '{c}' AND seq = 2",
        "UPDATE audit_log SET actor_id = NULL WHERE clinic_id = '{c}' AND seq = 2",
        "DELETE FROM audit_log WHERE clinic_id = '{c}' AND seq = 2",
        "UPDATE audit_log SET hash = prev_hash WHERE clinic_id = '{c}' AND seq = 2",
    ],
)
def test_verify_names_the_first_broken_entry(
    server: Server, fresh_clinic: Clinic, tamper: str
) -> None:
    for _ in range(3):
        fresh_clinic.client.post("/v1/viewer/users", json=invite_body())
    assert server.cli("audit", "verify", "--clinic", fresh_clinic.id).returncode == 0
    execute(server, tamper.format(c=fresh_clinic.id))
    result = server.cli("audit", "verify", "--clinic", fresh_clinic.id, check=False)
    assert result.returncode == 1
    assert fresh_clinic.id in result.stderr
    assert "seq 2" in result.stderr or "seq 3" in result.stderr
    # Other clinics are checked on their own; a full run still fails.
    assert server.cli("audit", "verify", check=False).returncode == 1
    execute(server, f"DELETE FROM audit_log WHERE clinic_id = '{fresh_clinic.id}'")


def test_export_writes_csv_since_a_day(server: Server, fresh_clinic: Clinic, tmp_path) -> None:
    user = fresh_clinic.client.post("/v1/viewer/users", json=invite_body(firstName="Csv")).json()
    fresh_clinic.client.patch(
        f"/v1/viewer/users/{user['userId']}", json={"lastName": 'Comma, Quote"'}
    )
    today = datetime.now(UTC).date()
    out = tmp_path / "audit.csv"
    server.cli(
        "audit", "export", "--clinic", fresh_clinic.id, "--since", str(today), "--output", str(out)
    )
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["action"] for r in rows] == ["user.invited", "user.updated"]
    assert rows[0]["targetId"] == user["userId"] and rows[0]["seq"] == "1"
    assert json.loads(rows[1]["changes"])["lastName"]["after"] == 'Comma, Quote"'
    # A cell that a spreadsheet would run as a formula is written as text, as in the
    # dashboard's download.
    fresh_clinic.client.post(
        "/v1/viewer/users", json=invite_body(), headers={"X-Request-Id": "=1+1"}
    )
    server.cli(
        "audit", "export", "--clinic", fresh_clinic.id, "--since", str(today), "--output", str(out)
    )
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows[-1]["action"] == "user.invited" and rows[-1]["requestId"] == "'=1+1"
    later = server.cli(
        "audit", "export", "--clinic", fresh_clinic.id, "--since", str(today + timedelta(days=1))
    )
    assert later.stdout.strip().splitlines() == [
        "seq,createdAt,actorType,actorId,action,targetType,targetId,changes,requestId,hash"
    ]
    bad = server.cli(
        "audit", "export", "--clinic", fresh_clinic.id, "--since", "yesterday", check=False
    )
    assert bad.returncode != 0
