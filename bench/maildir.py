"""`avara-viewer worker` draining the same backlog to the Maildir (no SMTP URL) and to an SMTP
sink, in turn, on SQLite: invitations queued with delivery off, then the worker timed until
the outbox is empty. Issue 16: "the Maildir path at least as fast as SMTP".

    python bench/maildir.py [--messages 3000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import BIN, Avara, Sink, _invite_many


def drain(messages: int, smtp: bool) -> float:
    """Messages per second the worker delivers, from its start to an empty outbox."""
    sink = Sink() if smtp else None
    case = Avara("maildir" if not smtp else "smtp", None, sink.url if sink else None)
    case.extra = ["--no-email"]
    case.start()
    try:
        asyncio.run(_invite_many(case.port, case.key, messages))
    finally:
        case.stop()
    worker = subprocess.Popen(
        [str(BIN / "avara-viewer"), "worker"],
        env=case.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.monotonic()
    try:
        while case.outbox_pending() > 0 and time.monotonic() - started < 300:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
        if sink is not None:
            sink.stop()
    if not smtp:
        maildir = case.tmp / "data" / "maildir" / "new"
        files = len(list(maildir.iterdir())) if maildir.exists() else -1
        print(f"  maildir files: {files}", flush=True)
    case.cleanup()
    return messages / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for n in range(args.rounds):
        maildir = drain(args.messages, smtp=False)
        smtp = drain(args.messages, smtp=True)
        print(
            f"round {n + 1}: worker drain, {args.messages} invitations: Maildir "
            f"{maildir:,.0f} msgs/s, SMTP sink {smtp:,.0f} msgs/s "
            f"(Maildir / SMTP = {maildir / smtp:.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
