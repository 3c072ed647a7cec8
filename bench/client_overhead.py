"""Per-call overhead of the `avara` client over a raw httpx request to the same server.

Usage (against a running server, e.g. `make run`):

    AVARA_BASE_URL=http://127.0.0.1:8000 AVARA_API_KEY=avk_... \\
        .venv/bin/python bench/client_overhead.py [--calls 500] [--call invite|retrieve]

Both sides keep one connection open and send the same request (body, auth, Idempotency-Key);
calls alternate between them so that server drift affects both alike. A second table
measures the same calls against an in-process fake transport: the client's own CPU cost,
with no network or server in it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable

import httpx
from avara import Avara

SEED = {
    "canManageStudies": True,
    "clinicRole": "Radiologist",
    "firstName": "Sarah",
    "hasDashboardAccess": True,
    "lastName": "Johnson",
    "level": "member",
}
USER = {
    **SEED,
    "userId": "usr_" + "0" * 32,
    "email": "dr.johnson@hospital.org",
    "middleName": None,
    "suffix1": None,
    "suffix2": None,
    "phoneNumber": None,
    "invitedSource": "api",
    "createdAt": "2024-01-15T10:00:00Z",
    "lastLoginAt": None,
    "status": "invited",
}


def unique_email() -> str:
    return f"bench.{uuid.uuid4().hex[:16]}@hospital.example"


def calls(
    client: Avara, raw: httpx.Client, which: str, user_id: str
) -> tuple[Callable[[], object], Callable[[], object]]:
    """The client call and the equivalent raw httpx request."""
    if which == "retrieve":

        def client_call() -> object:
            return client.viewer.users.retrieve(user_id)

        def raw_call() -> object:
            response = raw.get(f"/v1/viewer/users/{user_id}")
            response.raise_for_status()
            return response.json()
    else:

        def client_call() -> object:
            return client.viewer.users.invite(
                can_manage_studies=True,
                clinic_role="Radiologist",
                email=unique_email(),
                first_name="Sarah",
                has_dashboard_access=True,
                last_name="Johnson",
                level="member",
            )

        def raw_call() -> object:
            response = raw.post(
                "/v1/viewer/users",
                json={**SEED, "email": unique_email()},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            response.raise_for_status()
            return response.json()

    return client_call, raw_call


def measure(
    client_call: Callable[[], object], raw_call: Callable[[], object], n: int
) -> tuple[list[float], list[float]]:
    for _ in range(min(20, n)):  # warm up connections, imports, caches
        client_call()
        raw_call()
    times: dict[str, list[float]] = {"client": [], "raw": []}
    for i in range(n):
        # Alternate which goes first, so neither always follows the other's server work.
        order = [("client", client_call), ("raw", raw_call)]
        for name, call in order if i % 2 == 0 else reversed(order):
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    client_times, raw_times = times["client"], times["raw"]
    return client_times, raw_times


def report(title: str, client_times: list[float], raw_times: list[float]) -> None:
    def row(name: str, times: list[float]) -> str:
        ordered = sorted(times)
        p50 = ordered[len(ordered) // 2] * 1e3
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3
        mean = statistics.fmean(times) * 1e3
        return f"  {name:<12} mean {mean:8.3f} ms   p50 {p50:8.3f} ms   p99 {p99:8.3f} ms"

    mean_client, mean_raw = statistics.fmean(client_times), statistics.fmean(raw_times)
    print(f"{title} ({len(client_times)} calls each)")
    print(row("avara", client_times))
    print(row("raw httpx", raw_times))
    print(
        f"  overhead     {(mean_client - mean_raw) * 1e3:+8.3f} ms per call; "
        f"ratio {mean_client / mean_raw:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--call", choices=["invite", "retrieve"], default="invite")
    args = parser.parse_args()

    base_url = os.environ.get("AVARA_BASE_URL", "http://127.0.0.1:8000")
    api_key = os.environ["AVARA_API_KEY"]
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}

    with (
        Avara(api_key=api_key, base_url=base_url, max_retries=0) as client,
        httpx.Client(base_url=base_url, headers=headers, timeout=60) as raw,
    ):
        user_id = ""
        if args.call == "retrieve":
            user_id = client.viewer.users.invite(
                can_manage_studies=True,
                clinic_role="Radiologist",
                email=unique_email(),
                first_name="Sarah",
                has_dashboard_access=True,
                last_name="Johnson",
                level="member",
            ).user_id
        client_times, raw_times = measure(*calls(client, raw, args.call, user_id), args.calls)
    report(f"{args.call} against {base_url}", client_times, raw_times)

    # The same calls against an in-process transport: what the client itself costs.
    body = json.dumps(USER).encode()

    def fake(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, content=body, headers={"content-type": "application/json"})

    transport = httpx.MockTransport(fake)
    with (
        Avara(
            api_key=api_key, base_url=base_url, http_client=httpx.Client(transport=transport)
        ) as client,
        httpx.Client(base_url=base_url, headers=headers, transport=transport) as raw,
    ):
        client_times, raw_times = measure(
            *calls(client, raw, args.call, USER["userId"]), args.calls * 4
        )
    report(f"{args.call} against an in-process fake transport", client_times, raw_times)


if __name__ == "__main__":
    main()
