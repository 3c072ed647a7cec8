"""200 invites at once on each database: of one address (exactly one 201) and of 200 (all 201)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from support import Clinic, Server, invite_body, run_coroutine

N = 200


async def _burst(server: Server, key: str, bodies: list[dict]) -> list[int]:
    limits = httpx.Limits(max_connections=N, max_keepalive_connections=N)
    async with httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {key}"},
        limits=limits,
        timeout=60,
    ) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/viewer/users", json=body) for body in bodies)
        )
    return [r.status_code for r in responses]


def test_200_concurrent_invites_of_one_address_give_one_201_and_199_409s(
    server: Server, clinic: Clinic
) -> None:
    address = f"same.{uuid.uuid4().hex[:10]}@hospital.example"
    statuses = run_coroutine(lambda: _burst(server, clinic.key, [invite_body(email=address)] * N))
    assert statuses.count(201) == 1
    assert statuses.count(409) == N - 1
    assert server.sql(f"SELECT count(*) FROM users WHERE lower(email) = '{address}'") == [(1,)]
    assert server.sql(
        "SELECT count(*) FROM invitations i JOIN users u ON u.id = i.user_id "
        f"WHERE lower(u.email) = '{address}'"
    ) == [(1,)]


def test_200_concurrent_invites_of_different_addresses_all_succeed(
    server: Server, clinic: Clinic
) -> None:
    tag = uuid.uuid4().hex[:8]
    bodies = [invite_body(email=f"many.{tag}.{i}@hospital.example") for i in range(N)]
    statuses = run_coroutine(lambda: _burst(server, clinic.key, bodies))
    assert statuses == [201] * N
    assert server.sql(f"SELECT count(*) FROM users WHERE email LIKE 'many.{tag}.%'") == [(N,)]
    assert server.sql(f"SELECT count(*) FROM email_outbox WHERE recipient LIKE 'many.{tag}.%'") == [
        (N,)
    ]
