"""Crash safety: invite under load, SIGKILL the server at random moments, restart, verify.

Every invite answered 201 must exist exactly once with its invitation, and its email must
reach the SMTP server (more than once only as copies with one Message-ID, which a mail
system can recognise). Invites whose answer was lost in the kill may exist or not, but at
most once.

    .venv/bin/python bench/reliability/crash.py [--kills 20] [--backend sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from common import Server, SmtpSink, invite_body, record, stamp


async def _load(server: Server, key: str, run: int, seconds: float, concurrency: int) -> dict:
    """Invite from `concurrency` clients for `seconds`, then SIGKILL the server mid-flight."""
    acked: list[str] = []
    lost: list[str] = []
    server_errors = 0
    counter = iter(range(10**9))

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal server_errors
        while True:  # until the kill breaks the connection
            email = f"crash.{run}.{next(counter)}.{random.getrandbits(32):08x}@hospital.example"
            try:
                response = await client.post("/v1/viewer/users", json=invite_body(email=email))
            except httpx.HTTPError:
                lost.append(email)
                return
            if response.status_code == 201:
                acked.append(email)
            elif response.status_code >= 500:
                server_errors += 1
                lost.append(email)
            else:
                raise AssertionError(f"unexpected {response.status_code}: {response.text}")

    async with httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
        limits=httpx.Limits(max_connections=concurrency),
    ) as client:
        tasks = [asyncio.create_task(client_loop(client)) for _ in range(concurrency)]
        await asyncio.sleep(seconds)
        server.stop(signal.SIGKILL)  # requests are in flight right now
        await asyncio.gather(*tasks)
    return {"acked": acked, "lost": lost, "server_errors": server_errors}


def run_backend(backend: str, kills: int, concurrency: int) -> dict:
    sink = SmtpSink()
    sink.start()
    work = Path(tempfile.mkdtemp(prefix=f"crash-{backend}-"))
    server = Server(backend, work / "data", sink.url)
    server.start()
    clinic = server.create_clinic("Crash Clinic")
    acked: list[str] = []
    lost: list[str] = []
    server_errors = 0
    started = time.monotonic()
    try:
        for run in range(kills):
            if server.process is None:
                server.start()
            outcome = asyncio.run(
                _load(server, clinic.key, run, random.uniform(0.2, 1.5), concurrency)
            )
            acked += outcome["acked"]
            lost += outcome["lost"]
            server_errors += outcome["server_errors"]
            print(
                f"{backend} kill {run + 1}/{kills}: {len(outcome['acked'])} acked, "
                f"{len(outcome['lost'])} in flight at the kill"
            )
        server.start()
        # Wait for the outbox to drain (leases of killed senders expire after 3 s).
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            [(pending,)] = server.sql("SELECT count(*) FROM email_outbox WHERE status = 'pending'")
            if pending == 0:
                break
            time.sleep(0.5)
        time.sleep(1)
        users = Counter(e for (e,) in server.sql("SELECT lower(email) FROM users"))
        invitations = Counter(
            e
            for (e,) in server.sql(
                "SELECT lower(u.email) FROM invitations i JOIN users u ON u.id = i.user_id"
            )
        )
        outbox = Counter(s for (s,) in server.sql("SELECT status FROM email_outbox"))
        with sink.lock:
            mails = list(sink.mails)
        by_rcpt: dict[str, list[str]] = {}
        for mail in mails:
            for rcpt in mail.rcpt:
                by_rcpt.setdefault(rcpt.lower(), []).append(str(mail.message["Message-ID"]))
        missing_user = [e for e in acked if users[e] != 1 or invitations[e] != 1]
        missing_mail = [e for e in acked if not by_rcpt.get(e)]
        undetectable_dupes = [e for e, ids in by_rcpt.items() if len(ids) > 1 and len(set(ids)) > 1]
        detectable_dupes = sum(len(ids) - 1 for ids in by_rcpt.values() if len(set(ids)) == 1)
        lost_twice = [e for e in lost if users[e] > 1]
        lost_created = sum(1 for e in lost if users[e] == 1)
        result = {
            "backend": backend,
            "kills": kills,
            "concurrency": concurrency,
            "acked": len(acked),
            "in_flight_at_kill": len(lost),
            "in_flight_committed": lost_created,
            "server_errors": server_errors,
            "acked_missing_or_duplicated": len(missing_user),
            "acked_without_email": len(missing_mail),
            "emails": len(mails),
            "duplicate_emails_same_message_id": detectable_dupes,
            "duplicate_emails_different_message_id": len(undetectable_dupes),
            "in_flight_duplicated": len(lost_twice),
            "outbox": dict(outbox),
            "seconds": round(time.monotonic() - started, 1),
        }
        result["held"] = (
            not missing_user
            and not missing_mail
            and not undetectable_dupes
            and not lost_twice
            and server_errors == 0
            and outbox.get("pending", 0) == 0
        )
        return result
    finally:
        server.destroy()
        sink.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument(
        "--no-record", action="store_true", help="do not update docs/reliability.md"
    )
    parser.add_argument(
        "--results", help="record these saved JSON lines (this script's output) instead of running"
    )
    args = parser.parse_args()
    if args.results:
        lines = Path(args.results).read_text().splitlines()
        results = [json.loads(x) for x in lines if x.startswith("{")]
    else:
        results = [run_backend(b, args.kills, args.concurrency) for b in args.backend.split(",")]
        for r in results:
            print(json.dumps(r))
    rows = [
        "| backend | SIGKILLs | invites acked (201) | in flight at a kill (of them committed) "
        "| acked missing or doubled | acked without email | duplicate emails (same Message-ID) "
        "| 5xx | held |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r['backend']} | {r['kills']} | {r['acked']} | {r['in_flight_at_kill']} "
            f"({r['in_flight_committed']}) | {r['acked_missing_or_duplicated']} "
            f"| {r['acked_without_email']} | {r['duplicate_emails_same_message_id']} "
            f"| {r['server_errors']} | {'yes' if r['held'] else 'NO'} |"
        )
    rows.append(
        f"\n_`bench/reliability/crash.py --kills {args.kills} --concurrency "
        f"{args.concurrency}`, {stamp()}._"
    )
    if not args.no_record:
        record("crash", "\n".join(rows))
    if not all(r["held"] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
