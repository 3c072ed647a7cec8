"""Slow mail server, two delivering processes on one database: how many emails go out twice.

The SMTP server takes `--delay` seconds to answer each message's DATA; two `serve` processes
deliver from one database with lease `--lease`. Counts distinct Message-IDs, copies and the
processes' `avara_viewer_email_lease_lost_total`. Issue 11 saw 72 of 200 sent twice at 2.5 s
per message with the 30 s lease (a batch outlived its lease and the other process took it).

    .venv/bin/python bench/reliability/slow_smtp.py [--backend sqlite] [-n 200] [--delay 2.5]
        [--lease 30s]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from common import Server, SmtpSink, invite_body
from support import Mail


class SlowSink(SmtpSink):
    delay = 0.0

    def start(self) -> None:
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                await asyncio.sleep(sink.delay)
                with sink.lock:
                    sink.mails.append(
                        Mail(envelope.mail_from, list(envelope.rcpt_tos),
                             bytes(envelope.content), time.time())
                    )
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()


def _lease_lost(server: Server) -> float:
    text = httpx.get(server.base_url + "/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("avara_viewer_email_lease_lost_total")
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--delay", type=float, default=2.5)
    parser.add_argument("--lease", default="30s")
    args = parser.parse_args()
    sink = SlowSink()
    sink.delay = args.delay
    sink.start()
    root = Path(tempfile.mkdtemp())
    a = Server(args.backend, root / "a", sink.url, outbox_lease=args.lease)
    url = a.env.get("AVARA_VIEWER_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{a.data_dir / 'avara-viewer.db'}"
    )
    b = Server(
        args.backend, root / "b", sink.url, outbox_lease=args.lease,
        database_url=url, secret_key=a.env["AVARA_VIEWER_SECRET_KEY"],
    )
    try:
        a.start()
        b.start()
        clinic = a.create_clinic()
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = Counter(
                pool.map(
                    lambda _: clinic.client.post(
                        "/v1/viewer/users", json=invite_body()
                    ).status_code,
                    range(args.n),
                )
            )
        assert statuses == Counter({201: args.n}), statuses
        deadline = time.monotonic() + max(120.0, args.n * args.delay)
        ids: Counter[str] = Counter()
        while time.monotonic() < deadline:
            with sink.lock:
                ids = Counter(str(m.message["Message-ID"]) for m in sink.mails)
            if len(ids) >= args.n:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        time.sleep(3)  # copies still in flight
        with sink.lock:
            ids = Counter(str(m.message["Message-ID"]) for m in sink.mails)
        doubled = sum(1 for count in ids.values() if count > 1)
        print(
            f"{args.backend}: {len(ids)} of {args.n} delivered in {elapsed:.1f} s, "
            f"{doubled} sent twice, lease-lost counter {_lease_lost(a) + _lease_lost(b):.0f} "
            f"(SMTP {args.delay} s per message, lease {args.lease}, 2 processes)"
        )
    finally:
        a.destroy()
        b.destroy()
        sink.stop()


if __name__ == "__main__":
    main()
