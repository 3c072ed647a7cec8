"""Which database failures mean "try again shortly": the one place driver errors are mapped to
the contract's 503 codes (`database_unavailable`, `storage_full`).

The request path (errors.install), /readyz and the delivery loop ask `unavailable(exc)`; what
it does not recognise stays a bug (500). Errors arrive wrapped several ways: SQLAlchemy's
DBAPIError around the asyncpg adapter's error around asyncpg's own, or around sqlite3's; and
sometimes bare (an OSError from a refused connect, a pool TimeoutError), so the whole chain of
causes is looked at.
"""

from __future__ import annotations

import errno
import sqlite3
from dataclasses import dataclass

from sqlalchemy import exc as sa_exc

DATABASE_UNAVAILABLE = "database_unavailable"
STORAGE_FULL = "storage_full"

# SQLite primary result codes (extended codes carry them in the low byte).
_SQLITE_FULL = 13
# The extended I/O error of a WAL connection that could not create or grow its -shm file,
# which on a full disk is how opening the database fails (the first connection after all
# were closed must create it): SQLite's own documentation gives a full volume as its cause.
_SQLITE_IOERR_SHMSIZE = 4874
_SQLITE_UNAVAILABLE = {
    5: "the database is locked by another process",  # SQLITE_BUSY after busy_timeout
    6: "a table is locked",  # SQLITE_LOCKED
    8: "the database is read-only",  # SQLITE_READONLY
    10: "the disk answered an I/O error",  # SQLITE_IOERR
    14: "the database file cannot be opened",  # SQLITE_CANTOPEN
}

# PostgreSQL SQLSTATEs (or their two-character classes) that a later attempt can get past.
_PG_STORAGE_FULL = {"53100"}  # disk_full
_PG_UNAVAILABLE = {
    "08": "the connection to PostgreSQL failed",  # connection_exception (class)
    "53": "PostgreSQL is out of resources (connection slots, memory)",  # class
    "57P01": "PostgreSQL is shutting down",  # admin_shutdown
    "57P02": "PostgreSQL crashed",  # crash_shutdown
    "57P03": "PostgreSQL is starting up",  # cannot_connect_now
    "57014": "a statement took longer than statement_timeout",  # query_canceled
    "55P03": "a lock was not granted within lock_timeout",  # lock_not_available
    "25P03": "the transaction idled past idle_in_transaction_session_timeout",
    "40001": "the transaction was serialized against another",  # serialization_failure
    "40P01": "the transaction deadlocked with another",  # deadlock_detected
}


def _driver_errors() -> tuple[type[BaseException], ...]:
    import asyncpg  # type: ignore[import-untyped]

    return (asyncpg.PostgresError, asyncpg.InterfaceError)


# The exception types a request may fail with when the database does (the request path's
# handler is registered for each; `unavailable` then decides).
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,
    sqlite3.Error,
    OSError,
    *_driver_errors(),
)


@dataclass(frozen=True)
class Unavailable:
    """A failure of the database (not of the request): the 503 code and why, for the log."""

    code: str
    reason: str

    @property
    def retry_after(self) -> int:
        # A database coming back is usually seconds; a full disk needs an operator.
        return 1 if self.code == DATABASE_UNAVAILABLE else 10


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 16:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend([getattr(current, "orig", None), current.__cause__, current.__context__])
    return seen


def _sqlstate(exc: BaseException) -> str | None:
    for name in ("sqlstate", "pgcode"):
        value = getattr(exc, name, None)
        if isinstance(value, str) and len(value) == 5:
            return value
    return None


# Transactions PostgreSQL aborted only because of another's timing: run again, they succeed.
_PG_CONFLICTS = {"40001", "40P01"}  # serialization_failure, deadlock_detected


def lost_to_another(exc: BaseException) -> bool:
    """The transaction was aborted for a deadlock or a serialization failure with a concurrent
    one: nothing of it was kept, and running it again is the cure."""
    return any(_sqlstate(e) in _PG_CONFLICTS for e in _chain(exc))


def unavailable(exc: BaseException) -> Unavailable | None:
    """The 503 this failure deserves, or None when it is not the database's unavailability."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, sqlite3.Error):
            code = getattr(e, "sqlite_errorcode", None)
            primary = code & 0xFF if isinstance(code, int) else None
            full = primary == _SQLITE_FULL or code == _SQLITE_IOERR_SHMSIZE
            if full or "database or disk is full" in str(e):
                return Unavailable(STORAGE_FULL, "the disk holding the database is full")
            if primary in _SQLITE_UNAVAILABLE:
                return Unavailable(DATABASE_UNAVAILABLE, _SQLITE_UNAVAILABLE[primary])
            return None
        state = _sqlstate(e)
        if state is not None:
            if state in _PG_STORAGE_FULL:
                return Unavailable(STORAGE_FULL, "PostgreSQL's disk is full")
            reason = _PG_UNAVAILABLE.get(state) or _PG_UNAVAILABLE.get(state[:2])
            if reason is not None:
                return Unavailable(DATABASE_UNAVAILABLE, reason)
            return None  # a definite answer from the server, about this request
    for e in chain:
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            return Unavailable(STORAGE_FULL, "the disk holding the database is full")
        if isinstance(e, (ConnectionError, TimeoutError, sa_exc.TimeoutError)):
            return Unavailable(DATABASE_UNAVAILABLE, f"the database did not answer ({e})")
        if isinstance(e, OSError) and e.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH):
            return Unavailable(DATABASE_UNAVAILABLE, "the database refused the connection")
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return Unavailable(DATABASE_UNAVAILABLE, "the database connection was lost")
        if isinstance(e, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return Unavailable(DATABASE_UNAVAILABLE, "the database connection failed")
        if type(e).__module__.startswith("asyncpg") and type(e).__name__ in (
            "ConnectionDoesNotExistError",
            "InterfaceError",
            "InternalClientError",
        ):
            return Unavailable(DATABASE_UNAVAILABLE, "the database connection was lost")
    return None
