"""Online backup of the embedded SQLite store with sqlite3's backup API.

The copy is one consistent snapshot taken in a single step: in WAL mode the server keeps
writing meanwhile (readers do not block the writer), and commits made after the snapshot
began are simply not in it. The copy is written beside the target and renamed into place
only after an integrity check, so a failed backup never leaves a half-written file.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..config import private_file

TABLES_REPORTED = ("clinics", "api_keys", "users", "invitations", "email_outbox", "audit_log")


@dataclass(frozen=True)
class BackupResult:
    path: Path
    bytes: int
    rows: dict[str, int]


def backup_sqlite(source: Path, output: Path) -> BackupResult:
    if not source.exists():
        raise FileNotFoundError(f"no database at {source}")
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.unlink(missing_ok=True)
    # The copy holds what the database holds: 0600 whatever the umask (SQLite keeps an
    # existing file's mode, and gives its journal the same).
    private_file(partial, create=True)
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # pages=-1: everything in one step, so one consistent snapshot
            (check,) = dst.execute("PRAGMA integrity_check").fetchone()
            if check != "ok":
                raise RuntimeError(f"the backup failed its integrity check: {check}")
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            names = {r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            rows = {
                t: dst.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                for t in TABLES_REPORTED
                if t in names
            }
        finally:
            dst.close()
    finally:
        src.close()
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    partial.replace(output)
    return BackupResult(output, output.stat().st_size, rows)
