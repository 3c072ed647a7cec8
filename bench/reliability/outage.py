"""Mail outage: the SMTP server down for a minute, then flapping; then a refusing mailbox.

Checks that every queued email is delivered once the server is back (copies only with one
Message-ID), that retries back off (attempt counts and spacing from the outbox), and that a
mailbox refused with a 5xx reply is marked failed on the invitation after one attempt.

    .venv/bin/python bench/reliability/outage.py [--down 60] [--flap 60] [--backend ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from common import Server, SmtpSink, free_port, invite_body, record, stamp


def _invite(client: httpx.Client, prefix: str, i: int) -> str:
    email = f"{prefix}.{i}.{time.time_ns() % 10**9}@hospital.example"
    response = client.post("/v1/viewer/users", json=invite_body(email=email))
    assert response.status_code == 201, response.text
    return email


def _drain(server: Server, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        [(pending,)] = server.sql("SELECT count(*) FROM email_outbox WHERE status = 'pending'")
        if pending == 0:
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"outbox not drained after {timeout} s")


def _deliveries(sink: SmtpSink, emails: list[str]) -> tuple[int, int, int]:
    """(missing, copies with one Message-ID, copies with different Message-IDs)."""
    with sink.lock:
        mails = list(sink.mails)
    ids: dict[str, list[str]] = {}
    for mail in mails:
        for rcpt in mail.rcpt:
            ids.setdefault(rcpt, []).append(str(mail.message["Message-ID"]))
    missing = sum(1 for e in emails if not ids.get(e))
    same = sum(len(ids[e]) - 1 for e in emails if ids.get(e) and len(set(ids[e])) == 1)
    different = sum(1 for e in emails if ids.get(e) and len(set(ids[e])) > 1)
    return missing, same, different


def run_backend(backend: str, down: float, flap: float) -> list[dict]:
    work = Path(tempfile.mkdtemp(prefix=f"outage-{backend}-"))
    sink = SmtpSink(port=free_port())
    server = Server(backend, work / "data", sink.url)
    server.start()
    clinic = server.create_clinic("Outage Clinic")
    results = []
    try:
        # 1. Down for `down` seconds while invites keep arriving (one every 0.5 s).
        emails: list[str] = []
        started = time.monotonic()
        i = 0
        while time.monotonic() - started < down:
            emails.append(_invite(clinic.client, "down", i))
            i += 1
            time.sleep(0.5)
        attempts = [
            a for (a,) in server.sql("SELECT attempts FROM email_outbox WHERE status = 'pending'")
        ]
        pending = len(attempts)
        sink.start()
        recovered = time.monotonic()
        drain = _drain(server, 180)
        time.sleep(1)
        missing, same, different = _deliveries(sink, emails)
        results.append(
            {
                "backend": backend,
                "scenario": f"SMTP down {down:.0f} s",
                "emails": len(emails),
                "pending_at_recovery": pending,
                "attempts_max": max(attempts, default=0),
                "attempts_median": sorted(attempts)[len(attempts) // 2] if attempts else 0,
                "drained_after_recovery_s": round(drain, 1),
                "missing": missing,
                "dup_same_id": same,
                "dup_different_id": different,
                "held": missing == 0 and different == 0,
                "recovered_at": recovered - started,
            }
        )

        # 2. Flapping: up and down every 2-4 s for `flap` seconds, invites throughout.
        flap_emails: list[str] = []
        stop = threading.Event()

        def toggle() -> None:
            up = True
            while not stop.is_set():
                time.sleep(3)
                if up:
                    sink.stop()
                else:
                    sink.start()
                up = not up
            if sink.controller is None:
                sink.start()

        flapper = threading.Thread(target=toggle)
        flapper.start()
        started = time.monotonic()
        i = 0
        while time.monotonic() - started < flap:
            flap_emails.append(_invite(clinic.client, "flap", i))
            i += 1
            time.sleep(0.2)
        stop.set()
        flapper.join()
        drain = _drain(server, 180)
        time.sleep(1)
        missing, same, different = _deliveries(sink, flap_emails)
        [(max_attempts,)] = server.sql(
            "SELECT max(attempts) FROM email_outbox WHERE recipient LIKE 'flap.%'"
        )
        results.append(
            {
                "backend": backend,
                "scenario": f"SMTP flapping (3 s up / 3 s down) {flap:.0f} s",
                "emails": len(flap_emails),
                "attempts_max": max_attempts,
                "drained_after_recovery_s": round(drain, 1),
                "missing": missing,
                "dup_same_id": same,
                "dup_different_id": different,
                "held": missing == 0 and different == 0,
            }
        )

        # 3. A mailbox the server refuses with 550: failed after one attempt, never retried.
        refused = _invite(clinic.client, "reject550", 0)
        time.sleep(8)
        rows = server.sql(
            "SELECT i.delivery_status, o.status, o.attempts FROM invitations i "
            "JOIN users u ON u.id = i.user_id JOIN email_outbox o ON o.subject_id = i.id "
            f"WHERE u.email = '{refused}'"
        )
        results.append(
            {
                "backend": backend,
                "scenario": "mailbox refused with 550",
                "emails": 1,
                "outcome": rows,
                "held": rows == [("failed", "failed", 1)],
            }
        )
        outbox = Counter(s for (s,) in server.sql("SELECT status FROM email_outbox"))
        results[-1]["outbox"] = dict(outbox)
        return results
    finally:
        server.destroy()
        sink.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--down", type=float, default=60)
    parser.add_argument("--flap", type=float, default=60)
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument(
        "--results", help="record these saved JSON lines (this script's output) instead of running"
    )
    args = parser.parse_args()
    if args.results:
        lines = Path(args.results).read_text().splitlines()
        results = [json.loads(x) for x in lines if x.startswith("{")]
    else:
        results = [r for b in args.backend.split(",") for r in run_backend(b, args.down, args.flap)]
        for r in results:
            print(json.dumps(r, default=str))
    rows = [
        "| backend | scenario | emails | retries (max / median attempts) | drained after recovery "
        "| lost | copies (same Message-ID) | held |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "outcome" in r:
            detail = (
                f"invitation {r['outcome'][0][0]}, outbox {r['outcome'][0][1]}, "
                f"{r['outcome'][0][2]} attempt"
                if r["outcome"]
                else "not found"
            )
            rows.append(
                f"| {r['backend']} | {r['scenario']} | 1 | {detail} | — | — | — "
                f"| {'yes' if r['held'] else 'NO'} |"
            )
            continue
        median = f" / {r['attempts_median']}" if "attempts_median" in r else ""
        rows.append(
            f"| {r['backend']} | {r['scenario']} | {r['emails']} | {r['attempts_max']}{median} "
            f"| {r['drained_after_recovery_s']} s | {r['missing']} | {r['dup_same_id']} "
            f"| {'yes' if r['held'] else 'NO'} |"
        )
    rows.append(
        f"\n_`bench/reliability/outage.py --down {args.down:.0f} --flap {args.flap:.0f}`, "
        f"{stamp()}; outbox max backoff 60 s (the default)._"
    )
    if not args.no_record:
        record("outage", "\n".join(rows))
    if not all(r["held"] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
