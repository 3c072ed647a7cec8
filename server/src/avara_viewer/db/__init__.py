"""The database layer: shared table metadata and protocols (base), the SQLite single-writer
path (sqlite) and the pooled PostgreSQL path (postgres), one chosen by open_database.

Services read db.base: its docstring states the await rule every operation follows.
"""

from ..config import Settings
from .base import (
    Base,
    Batcher,
    Database,
    Operation,
    UTCDateTime,
    insert_rows,
    retry_on_integrity_error,
)
from .postgres import PostgresDatabase, make_async_engine
from .sqlite import InlineConnection, SqliteDatabase, make_sqlite_engine


def open_database(settings: Settings) -> Database:
    """The Database for the configured URL (nothing connects before the first call)."""
    if settings.is_sqlite:
        return SqliteDatabase(settings)
    return PostgresDatabase(settings)


__all__ = [
    "Base",
    "Batcher",
    "Database",
    "InlineConnection",
    "Operation",
    "PostgresDatabase",
    "SqliteDatabase",
    "UTCDateTime",
    "insert_rows",
    "make_async_engine",
    "make_sqlite_engine",
    "open_database",
    "retry_on_integrity_error",
]
