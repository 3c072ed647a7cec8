"""Settings read from the environment (prefix AVARA_VIEWER_) or a .env file."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from datetime import timedelta
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | int | timedelta) -> timedelta:
    """Parse '7d', '12h', '30m', '45s', '2w' or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return timedelta(seconds=int(value))
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 7d, 12h, 30m or seconds)")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AVARA_VIEWER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    data_dir: Path = Path(".avara-viewer")
    database_url: str | None = None
    smtp_url: str | None = None
    mail_from: str = "Avara Viewer <no-reply@avara-viewer.localhost>"
    public_url: str = "http://127.0.0.1:8000"
    invitation_ttl: timedelta = timedelta(days=7)
    secret_key: str | None = None
    # SQLite durability: FULL makes every acknowledged commit survive a power cut.
    sqlite_synchronous: str = "FULL"
    # Enforce the await rule of operations (see db.base) on PostgreSQL too, where breaking it
    # would otherwise pass unnoticed; SQLite enforces it always. The test servers turn it on.
    check_operations: bool = False
    # Outbox delivery: how long a claimed message stays leased to one process, how often idle
    # workers look for work, and how long a message is retried before it is marked failed.
    outbox_lease: timedelta = timedelta(seconds=30)
    outbox_poll_interval: float = 1.0
    outbox_gather_delay: float = 0.02
    outbox_give_up_after: timedelta = timedelta(hours=72)
    outbox_max_backoff: timedelta = timedelta(seconds=60)
    smtp_max_connections: int = 4
    # PostgreSQL session limits: a stalled or paused process cannot hold locks (the per-clinic
    # audit lock) for longer than the idle timeout, and others wait at most lock_timeout for
    # one (then 503 database_unavailable) instead of stalling with it.
    pg_statement_timeout: timedelta = timedelta(seconds=30)
    pg_lock_timeout: timedelta = timedelta(seconds=5)
    pg_idle_in_transaction_timeout: timedelta = timedelta(seconds=10)
    pg_connect_timeout: timedelta = timedelta(seconds=5)
    idempotency_ttl: timedelta = timedelta(hours=24)
    rate_limit_per_minute: int = 600
    # Logs: json (one object per line) or text; unset means json for serve and worker.
    log_format: str | None = None
    # One access log line per request (request id, method, path, status, duration).
    log_requests: bool = True
    # uvicorn: connections plus requests in progress beyond which new ones get a 503.
    limit_concurrency: int = 2048
    # Seconds a client has to send a request's line and headers once it has started.
    http_head_timeout: float = 20.0
    # Seconds an idle keep-alive connection is kept open. Longer than the idle time of the
    # clients and proxies in front (httpx 5 s, nginx upstream 60 s, AWS ALB 60 s), so that the
    # client closes it first: a server that closes it as the client reuses it makes the
    # client's request fail (a reset, or a proxy's 502).
    http_keep_alive_timeout: float = 65.0
    resend_cooldown: timedelta = timedelta(seconds=60)
    # Webhooks: plain http and private, loopback or link-local addresses only when allowed
    # (tests, on-premise receivers); the timeout of one POST; a factor on the retry schedule
    # (tests shrink it, never sleeping for real schedule times); how long a claimed delivery
    # stays leased to one process; how long an endpoint may fail before it is disabled.
    webhook_allow_private: bool = False
    webhook_timeout: float = 15.0
    webhook_retry_scale: float = 1.0
    webhook_lease: timedelta = timedelta(seconds=60)
    webhook_poll_interval: float = 1.0
    webhook_disable_after: timedelta = timedelta(days=5)
    webhook_sweep_interval: float = 30.0
    # Finished deliveries, their attempts and events are deleted after this long (the
    # deliveries page and API show this far back); see webhooks.retention.
    webhook_retention: timedelta = timedelta(days=30)
    # Dashboard sessions: ended after this long without a request (a clinic may choose another
    # idle timeout on its settings page), and this long after sign-in whatever happens.
    session_idle_timeout: timedelta = timedelta(minutes=15)
    session_max_age: timedelta = timedelta(hours=12)
    # Addresses or networks (comma-separated) of reverse proxies whose X-Forwarded-For is
    # believed; unset, the header is ignored and the peer address is the client's.
    trusted_proxies: str | None = None
    # false: clinics' MFA policies are not enforced at password sign-in (people may still
    # enrol, and an owner's break-glass sign-in under required SSO always needs MFA). For
    # demos and the tests of other features; production keeps the default.
    mfa_enforced: bool = True
    # argon2id's passes and memory per password hash: argon2-cffi's defaults (RFC 9106's
    # low-memory profile), ~0.2 s of CPU here. Lower them only for demos and tests.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8192)
    # /metrics: unset, only loopback clients not behind a proxy may scrape; set, a client
    # presenting it as a Bearer token may scrape from anywhere.
    metrics_token: str | None = None

    @field_validator(
        "invitation_ttl",
        "outbox_lease",
        "outbox_give_up_after",
        "outbox_max_backoff",
        "idempotency_ttl",
        "resend_cooldown",
        "webhook_lease",
        "webhook_disable_after",
        "webhook_retention",
        "session_idle_timeout",
        "session_max_age",
        "pg_statement_timeout",
        "pg_lock_timeout",
        "pg_idle_in_transaction_timeout",
        "pg_connect_timeout",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        if isinstance(value, (str, int, timedelta)):
            return parse_duration(value)
        raise ValueError("expected a duration such as 7d, 12h, 30m or a number of seconds")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        for item in value.split(","):
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{item.strip()!r} is not an IP address or network") from None
        return ",".join(item.strip() for item in value.split(","))

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("sqlite_synchronous")
    @classmethod
    def _sync_mode(cls, value: str) -> str:
        value = value.upper()
        if value not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError("must be OFF, NORMAL, FULL or EXTRA")
        return value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in {"json", "text"}:
            raise ValueError("must be json or text")
        return value.lower() if value is not None else None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'avara-viewer.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @cached_property
    def resolved_secret_key(self) -> bytes:
        """The server secret; generated once and kept in the data dir when not configured."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret_key"
        private_dir(self.data_dir)
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.unlink(missing_ok=True)
            # Created 0600, never briefly readable under a permissive umask.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            tmp.replace(path)
        else:
            private_file(path)
        return path.read_text().strip().encode()

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None (PostgreSQL, or an in-memory database)."""
        if not self.is_sqlite:
            return None
        location = self.resolved_database_url.split(":///", 1)[-1].split("?", 1)[0]
        if not location or location == ":memory:":
            return None
        return Path(location)

    def ensure_data_dir(self) -> None:
        """Create the data dir 0700 and, on SQLite, the database file 0600 before SQLite does,
        whatever the umask: they hold personal data and password hashes. SQLite gives the
        -wal and -shm files the database file's mode. Existing ones are tightened too."""
        private_dir(self.data_dir)
        database = self.sqlite_path
        if database is not None:
            private_file(database, create=True)
            for suffix in ("-wal", "-shm"):
                private_file(database.with_name(database.name + suffix))


def private_dir(path: Path) -> None:
    """Make the directory (and its parents) if missing; no access for group or others."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        path.chmod(mode & 0o700)


def private_file(path: Path, *, create: bool = False) -> None:
    """Read and write for the owner only (0600); created empty first with `create`."""
    if create:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    elif not path.exists():
        return
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
