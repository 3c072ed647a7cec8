"""`avara-viewer worker` draining the same backlog to the Maildir (no SMTP URL) and to an SMTP
sink, in turn, on SQLite: invitations queued with delivery off, then the worker timed from the
first to the last message delivered (bench/run.py's drain, which `make bench` also runs).
Issue 16: "the Maildir path at least as fast as SMTP".

    python bench/maildir.py [--messages 3000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import drain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for n in range(args.rounds):
        maildir = drain(None, args.messages, smtp=False)
        smtp = drain(None, args.messages, smtp=True)
        print(
            f"round {n + 1}: worker drain, {args.messages} invitations: Maildir "
            f"{maildir['messages']:,.0f} messages at {maildir['per_second']:,.0f} msgs/s, "
            f"SMTP sink {smtp['messages']:,.0f} at {smtp['per_second']:,.0f} msgs/s "
            f"(Maildir / SMTP = {maildir['per_second'] / smtp['per_second']:.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
