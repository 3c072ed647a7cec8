"""Writing to a test server's database directly: only to arrange states no API call reaches
yet (an accepted invitation, an expired one) and to tamper with the audit trail on purpose."""

from __future__ import annotations

import asyncio
import sqlite3

from support import PG_ADMIN_URL, Server


def execute(server: Server, statement: str) -> None:
    if server.backend == "sqlite":
        with sqlite3.connect(server.data_dir / "avara-viewer.db") as conn:
            conn.execute(statement)
        return
    import asyncpg  # type: ignore[import-untyped]

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + str(server.database))
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def accept_invitation(server: Server, user_id: str) -> None:
    """What accepting does to the rows: the invitation accepted, the user active."""
    execute(server, f"UPDATE invitations SET status = 'accepted' WHERE user_id = '{user_id}'")
    execute(server, f"UPDATE users SET status = 'active' WHERE id = '{user_id}'")


def expire_invitation(server: Server, invitation_id: str) -> None:
    """Move the invitation's expiry and issue time into the past."""
    execute(
        server,
        "UPDATE invitations SET expiry = '2020-01-01 00:00:00', issued_at = '2020-01-01 00:00:00'"
        f" WHERE id = '{invitation_id}'",
    )
