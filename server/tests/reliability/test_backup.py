"""`avara-viewer backup` of the SQLite store while it serves writes, restored and compared."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time

import httpx
from support import invite_body


def _rows(db, table: str, ids: list[str] | None = None) -> dict[str, tuple]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT * FROM {table}").fetchall()
    return {row[0]: row for row in rows}


def test_a_backup_under_write_load_restores_every_acknowledged_invite(server_on, tmp_path) -> None:
    # The backup command is for the embedded SQLite store (PostgreSQL: pg_dump).
    server = server_on("sqlite")
    server.start()
    clinic = server.create_clinic("Backup Clinic")
    created: list[tuple[float, str]] = []  # (time the 201 arrived, userId)
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {clinic.key}"}
        ) as client:
            while not stop.is_set():
                response = client.post("/v1/viewer/users", json=invite_body())
                assert response.status_code == 201, response.text
                created.append((time.monotonic(), response.json()["userId"]))

    writers = [threading.Thread(target=load) for _ in range(4)]
    for writer in writers:
        writer.start()
    try:
        time.sleep(1.5)
        started = time.monotonic()
        output = tmp_path / "backups" / "viewer.db"
        result = server.cli("backup", "--output", str(output))
        assert result.stdout.strip().splitlines()[-1] == str(output)
        time.sleep(0.5)
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    before = [user_id for at, user_id in created if at < started]
    assert len(before) > 20 and len(created) > len(before)  # writes went on around the backup

    # Restore into a new data dir and compare with the live store.
    restored = server_on("sqlite", secret_key=server.env["AVARA_VIEWER_SECRET_KEY"])
    for suffix in ("", "-wal", "-shm"):
        (restored.data_dir / f"avara-viewer.db{suffix}").unlink(missing_ok=True)
    shutil.copy(output, restored.data_dir / "avara-viewer.db")
    live_db = server.data_dir / "avara-viewer.db"
    copy_db = restored.data_dir / "avara-viewer.db"
    live_users, copy_users = _rows(live_db, "users"), _rows(copy_db, "users")
    assert set(before) <= set(copy_users)
    assert set(copy_users) <= set(live_users)
    assert all(copy_users[i] == live_users[i] for i in copy_users)
    with sqlite3.connect(copy_db) as conn:
        missing = conn.execute(
            "SELECT count(*) FROM users u LEFT JOIN invitations i ON i.user_id = u.id "
            "WHERE i.id IS NULL"
        ).fetchone()[0]
        queued = conn.execute("SELECT count(*) FROM email_outbox").fetchone()[0]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert missing == 0 and queued == len(copy_users)

    # The restored store serves: same key, same users.
    restored.start()
    with httpx.Client(
        base_url=restored.base_url, headers={"Authorization": f"Bearer {clinic.key}"}
    ) as client:
        for user_id in before[:: max(1, len(before) // 10)]:
            assert client.get(f"/v1/viewer/users/{user_id}").status_code == 200


def test_backup_refuses_postgresql_and_names_pg_dump(server_on) -> None:
    server = server_on("postgresql")
    result = server.cli("backup", "--output", str(server.data_dir / "x.db"), check=False)
    assert result.returncode == 1
    assert "pg_dump" in result.stderr
