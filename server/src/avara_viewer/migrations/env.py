"""Alembic environment: runs migrations over the configured async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from avara_viewer.config import Settings
from avara_viewer.db import make_async_engine, make_sqlite_engine
from avara_viewer.models import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(settings: Settings) -> None:
    engine = make_async_engine(settings, session_limits=False)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=Settings().resolved_database_url,
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    settings: Settings = config.attributes.get("settings") or Settings()
    if settings.is_sqlite:
        sqlite_engine = make_sqlite_engine(settings)
        try:
            with sqlite_engine.connect() as sync_conn:
                _run(sync_conn)
                sync_conn.commit()
        finally:
            sqlite_engine.dispose()
    else:
        asyncio.run(_run_async(settings))
