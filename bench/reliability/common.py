"""Shared by the reliability scripts: the test suite's real server and SMTP sink, and writing
figures into docs/reliability.md between `<!-- NAME:begin -->` and `<!-- NAME:end -->`."""

from __future__ import annotations

import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "server" / "tests"))

# server/tests is not a package: support is importable only after the path above.
from support import Server, SmtpSink, free_port, invite_body  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"

__all__ = ["DOC", "ROOT", "Server", "SmtpSink", "free_port", "invite_body", "record", "stamp"]


def stamp() -> str:
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node() or 'this machine'}"
    )


def record(name: str, markdown: str) -> None:
    """Replace the block NAME of docs/reliability.md with markdown (append it if missing)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    text = DOC.read_text() if DOC.exists() else "# Reliability\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text + f"\n{block}\n"
    DOC.write_text(text)
    print(f"recorded {name} in {DOC.relative_to(ROOT)}")
