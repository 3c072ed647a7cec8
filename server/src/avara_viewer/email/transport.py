"""Deliver pre-built messages: pooled SMTP (aiosmtplib) or a durable local Maildir.

Both transports have the same interface::

    await transport.send(mail_from="...", rcpt="...", message=b"...")
    await transport.aclose()

``send`` returns once the mail server (or the disk) has taken the message, and otherwise
raises :class:`TemporaryDeliveryError` (try again later) or :class:`PermanentDeliveryError`
(the server refused this message or recipient with a 5xx reply; retrying will not help).

Message bodies contain single-use secret links: they are never logged, and neither are
credentials. Recipients are logged masked (``s***@hospital.org``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import mailbox
import os
import secrets
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiosmtplib

from .. import aio

__all__ = [
    "MaildirTransport",
    "PermanentDeliveryError",
    "SmtpConfig",
    "SmtpTransport",
    "TemporaryDeliveryError",
    "parse_smtp_url",
    "transport_from_settings",
]

logger = logging.getLogger("avara_viewer.email")

SETTING = "AVARA_VIEWER_SMTP_URL"


class TemporaryDeliveryError(Exception):
    """Not delivered this time (connection refused or lost, timeout, 4xx reply): retry later."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class PermanentDeliveryError(Exception):
    """The server refused the recipient or the message with a 5xx reply: do not retry."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def _mask(address: str) -> str:
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def _reject_crlf(name: str, value: str) -> None:
    if not isinstance(value, str) or not value or "\r" in value or "\n" in value or "\x00" in value:
        raise ValueError(f"{name} must be a non-empty string without CR, LF or NUL")


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in logs or reprs
    use_tls: bool = False  # smtps:// (implicit TLS)
    start_tls: bool = False  # smtp+starttls:// (STARTTLS required)


_DEFAULT_PORTS = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}


def parse_smtp_url(url: str) -> SmtpConfig:
    """Parse ``AVARA_VIEWER_SMTP_URL``.

    ``smtp://[user[:pass]@]host[:port]`` (plain, port 25), ``smtps://...`` (implicit TLS,
    port 465), ``smtp+starttls://...`` (STARTTLS required, port 587). User and password
    are percent-decoded. Anything else is a ValueError naming the setting.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"{SETTING} is empty")
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(
                f"{SETTING} must start with smtp://, smtps:// or smtp+starttls:// "
                f"(got {parts.scheme or 'no'} scheme)"
            )
        host = parts.hostname
        port = parts.port  # ValueError when not a number in 0..65535
    except ValueError as exc:
        if str(exc).startswith(SETTING):
            raise
        raise ValueError(f"{SETTING} is not a valid URL: {exc}") from None
    if not host:
        raise ValueError(f"{SETTING} has no host name")
    if port == 0:
        raise ValueError(f"{SETTING} has an invalid port")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if username == "":
        username = None
    return SmtpConfig(
        host=host,
        port=port or _DEFAULT_PORTS[scheme],
        username=username,
        password=password if username is not None else None,
        use_tls=scheme == "smtps",
        start_tls=scheme == "smtp+starttls",
    )


# --------------------------------------------------------------------------- SMTP


@dataclass(eq=False, slots=True)
class _Connection:
    client: aiosmtplib.SMTP
    serial: int
    sent: int = 0
    last_used: float = field(default_factory=time.monotonic)


class SmtpTransport:
    """Sends over a small pool of kept-open SMTP connections (at most ``max_connections``).

    Concurrent ``send`` calls use separate connections; idle ones are reused (newest
    first), checked with NOOP after ``idle_check_after`` seconds of idleness, and recycled
    after ``max_messages_per_connection`` messages. A connection that breaks is discarded.
    """

    def __init__(
        self,
        config: SmtpConfig,
        *,
        timeout: float = 30,
        max_connections: int = 4,
        idle_check_after: float = 10.0,
        max_messages_per_connection: int = 100,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.config = config
        self.timeout = timeout
        self.max_connections = max_connections
        self.idle_check_after = idle_check_after
        self.max_messages_per_connection = max_messages_per_connection
        self._idle: deque[_Connection] = deque()
        self._slots: asyncio.Semaphore | None = None  # created on first use, inside the loop
        self._serial = itertools.count(1)
        self._closed = False
        self._quit_tasks: set[asyncio.Task[None]] = set()  # strong references until done
        self.connections_opened = 0  # for tests and metrics

    def __repr__(self) -> str:
        return f"SmtpTransport({self.config!r}, max_connections={self.max_connections})"

    # -- pool

    async def _connect(self) -> _Connection:
        cfg = self.config
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            username=cfg.username,
            password=cfg.password,
            use_tls=cfg.use_tls,
            # False for plain smtp://: never upgrade (and verify certificates) behind the
            # user's back; smtp+starttls:// requires STARTTLS.
            start_tls=cfg.start_tls,
            timeout=self.timeout,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            # A configuration problem, not a verdict on this message: keep it queued.
            logger.error(
                "SMTP authentication to %s:%s failed: %s %s",
                cfg.host,
                cfg.port,
                exc.code,
                exc.message,
            )
            raise TemporaryDeliveryError(
                f"SMTP authentication failed: {exc.code} {exc.message}", code=exc.code
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            logger.warning(
                "SMTP server %s:%s refused the session: %s %s",
                cfg.host,
                cfg.port,
                exc.code,
                exc.message,
            )
            raise TemporaryDeliveryError(
                f"SMTP server refused the session: {exc.code} {exc.message}",
                code=exc.code,
            ) from None
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            logger.warning(
                "cannot connect to SMTP server %s:%s: %s",
                cfg.host,
                cfg.port,
                _describe(exc),
            )
            raise TemporaryDeliveryError(
                f"cannot connect to SMTP server {cfg.host}:{cfg.port}: {_describe(exc)}"
            ) from None
        self.connections_opened += 1
        conn = _Connection(client=client, serial=next(self._serial))
        logger.debug("SMTP connection #%d to %s:%s opened", conn.serial, cfg.host, cfg.port)
        return conn

    async def _acquire(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()  # most recently used: the likeliest to be alive
            if not conn.client.is_connected:
                self._discard(conn)
                continue
            if time.monotonic() - conn.last_used > self.idle_check_after:
                try:
                    await conn.client.noop()
                except (TimeoutError, aiosmtplib.SMTPException, OSError):
                    logger.debug("SMTP connection #%d went stale; reconnecting", conn.serial)
                    self._discard(conn)
                    continue
            return conn
        return await self._connect()

    def _release(self, conn: _Connection) -> None:
        conn.last_used = time.monotonic()
        if (
            self._closed
            or not conn.client.is_connected
            or conn.sent >= self.max_messages_per_connection
        ):
            # Recycle politely in the background; never block the caller on QUIT.
            self._spawn_quit(conn)
        else:
            self._idle.append(conn)

    def _discard(self, conn: _Connection) -> None:
        conn.client.close()

    def _spawn_quit(self, conn: _Connection) -> None:
        if not conn.client.is_connected:
            conn.client.close()
            return
        task = asyncio.get_running_loop().create_task(self._quit(conn))
        self._quit_tasks.add(task)
        task.add_done_callback(self._quit_tasks.discard)

    async def _quit(self, conn: _Connection) -> None:
        try:
            await aio.within(conn.client.quit(), min(self.timeout, 5.0))
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            pass
        finally:
            conn.client.close()

    # -- public API

    async def send(self, *, mail_from: str, rcpt: str, message: bytes) -> None:
        """Deliver ``message`` (RFC 5322 bytes) to one recipient."""
        _reject_crlf("mail_from", mail_from)
        _reject_crlf("rcpt", rcpt)
        if self._closed:
            raise TemporaryDeliveryError("SMTP transport is closed")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_connections)
        async with self._slots:
            conn = await self._acquire()
            reusable = False
            try:
                await conn.client.sendmail(mail_from, [rcpt], message)
                conn.sent += 1
                reusable = True
            except aiosmtplib.SMTPRecipientsRefused as exc:
                refused = exc.recipients[0] if exc.recipients else None
                code = refused.code if refused is not None else None
                text = refused.message if refused is not None else str(exc)
                reusable = True  # aiosmtplib has already sent RSET
                raise self._reply_error("recipient refused", rcpt, code, text) from None
            except aiosmtplib.SMTPServerDisconnected as exc:
                logger.warning(
                    "SMTP connection #%d lost while sending to %s: %s",
                    conn.serial,
                    _mask(rcpt),
                    _describe(exc),
                )
                raise TemporaryDeliveryError(f"SMTP connection lost: {_describe(exc)}") from None
            except aiosmtplib.SMTPSenderRefused as exc:
                reusable = exc.code != 421
                if exc.code == 552:  # RFC 1870: the message is too big for this server
                    raise self._reply_error(
                        "message refused", rcpt, exc.code, exc.message
                    ) from None
                # Anything else at MAIL FROM ("530 authentication required", "550 sender
                # not allowed") is a verdict on our configuration, not on this message:
                # keep the message queued until the configuration is fixed.
                logger.error(
                    "SMTP server refused the sender (check AVARA_VIEWER_MAIL_FROM and %s): %s %s",
                    SETTING,
                    exc.code,
                    exc.message,
                )
                raise TemporaryDeliveryError(
                    f"sender refused: {exc.code} {exc.message}", code=exc.code
                ) from None
            except aiosmtplib.SMTPResponseException as exc:
                # DATA refused or another reply: the session is still usable unless the
                # server said it is closing (421).
                reusable = exc.code != 421
                raise self._reply_error("message refused", rcpt, exc.code, exc.message) from None
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                logger.warning("SMTP send to %s failed: %s", _mask(rcpt), _describe(exc))
                raise TemporaryDeliveryError(f"SMTP send failed: {_describe(exc)}") from None
            finally:
                # Also reached on cancellation: a half-done transaction is never reused.
                if reusable:
                    self._release(conn)
                else:
                    self._discard(conn)
        logger.debug("SMTP connection #%d delivered a message to %s", conn.serial, _mask(rcpt))

    def _reply_error(self, what: str, rcpt: str, code: int | None, text: str) -> Exception:
        detail = f"{code} {text}".strip() if code is not None else text
        if code is not None and 500 <= code <= 599:
            logger.warning("SMTP permanent failure for %s (%s): %s", _mask(rcpt), what, detail)
            return PermanentDeliveryError(f"{what}: {detail}", code=code)
        logger.info("SMTP temporary failure for %s (%s): %s", _mask(rcpt), what, detail)
        return TemporaryDeliveryError(f"{what}: {detail}", code=code)

    async def aclose(self) -> None:
        """QUIT every idle connection; connections in use are closed when released."""
        self._closed = True
        idle, self._idle = list(self._idle), deque()
        await asyncio.gather(*(self._quit(conn) for conn in idle), return_exceptions=True)
        pending = list(self._quit_tasks)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def __aenter__(self) -> SmtpTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------- Maildir


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MaildirTransport:
    """Writes each message durably into a Maildir (used when no SMTP server is configured).

    The Maildir protocol with fsync: write into ``tmp/`` under a unique name, fsync the file,
    link it into ``new/``, fsync ``new/``. The delivery loop hands over a whole batch at once
    (``send_many``): one thread hop, and one fsync of ``new/`` for the batch. After
    ``send``/``send_many`` reports a message delivered it survives a crash or power loss.
    Files use LF line endings (the Maildir convention) and get ``Return-Path`` and
    ``Delivered-To`` headers like a local delivery agent would add.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        existed = self.path.exists()
        mailbox.Maildir(self.path, create=True)  # creates path/{tmp,new,cur}
        if not existed:
            for sub in ("tmp", "new", "cur"):
                _fsync_dir(self.path / sub)
            _fsync_dir(self.path)
            _fsync_dir(self.path.parent)
        self._counter = itertools.count(1)
        host = socket.gethostname() or "localhost"
        self._host = host.replace("/", r"\057").replace(":", r"\072")

    def __repr__(self) -> str:
        return f"MaildirTransport({str(self.path)!r})"

    def _unique_name(self) -> str:
        now = time.time()
        seconds = int(now)
        micros = int((now - seconds) * 1_000_000)
        unique = f"M{micros}P{os.getpid()}Q{next(self._counter)}R{secrets.token_hex(8)}"
        return f"{seconds}.{unique}.{self._host}"

    def _write_many(self, mail_from: str, items: list[tuple[str, bytes]]) -> list[str | OSError]:
        """Each message's file name in new/, or the error that kept it out.

        The Maildir protocol for a batch: every file written into tmp/, then every file
        fsynced (on a journalling file system the first fsync commits the others' data and
        metadata with it, so the rest cost little), then each linked into new/ and new/
        fsynced once. A message counts as delivered only after that last fsync.
        """
        out: list[str | OSError] = []
        opened: list[tuple[int, str, int]] = []  # (index in items, name, fd) of files in tmp/
        tmp_dir = self.path / "tmp"
        new_dir = self.path / "new"
        try:
            for index, (rcpt, message) in enumerate(items):
                name = self._unique_name()
                out.append(name)
                data = (
                    f"Return-Path: <{mail_from}>\nDelivered-To: {rcpt}\n".encode()
                    + message.replace(b"\r\n", b"\n")
                )
                try:
                    fd = os.open(tmp_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except OSError as exc:
                    out[index] = exc
                    continue
                opened.append((index, name, fd))
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                except OSError as exc:
                    out[index] = exc
            for index, _, fd in opened:
                if isinstance(out[index], OSError):
                    continue
                try:
                    os.fsync(fd)
                except OSError as exc:
                    out[index] = exc
        finally:
            for _, _, fd in opened:
                with contextlib.suppress(OSError):
                    os.close(fd)
        linked = False
        for index, name, _ in opened:
            tmp_path = tmp_dir / name
            if not isinstance(out[index], OSError):
                try:
                    try:
                        os.link(tmp_path, new_dir / name)  # fails instead of overwriting
                    except (AttributeError, PermissionError, NotImplementedError):
                        os.rename(tmp_path, new_dir / name)  # file systems without hard links
                    linked = True
                except OSError as exc:
                    out[index] = exc
            with contextlib.suppress(OSError):
                os.unlink(tmp_path)
        if linked:
            try:
                _fsync_dir(new_dir)
            except OSError as exc:
                # Linked but maybe not durable: delivered again later (at least once).
                out = [exc if isinstance(o, str) else o for o in out]
        return out

    async def send_many(
        self, *, mail_from: str, messages: list[tuple[str, bytes]]
    ) -> list[Exception | None]:
        """Delivers a batch of (rcpt, message): for each, None (durable in new/) or the
        error (TemporaryDeliveryError for a file system error, ValueError for an envelope
        that cannot be written)."""
        try:
            _reject_crlf("mail_from", mail_from)
        except ValueError as exc:
            return [exc for _ in messages]
        results: list[Exception | None] = [None] * len(messages)
        todo: list[int] = []
        for index, (rcpt, _) in enumerate(messages):
            try:
                _reject_crlf("rcpt", rcpt)
            except ValueError as exc:
                results[index] = exc
            else:
                todo.append(index)
        if not todo:
            return results
        outcomes = await asyncio.to_thread(self._write_many, mail_from, [messages[i] for i in todo])
        failed = 0
        for index, outcome in zip(todo, outcomes, strict=True):
            if isinstance(outcome, OSError):
                failed += 1
                logger.error(
                    "cannot write message for %s into Maildir %s: %s",
                    _mask(messages[index][0]),
                    self.path,
                    _describe(outcome),
                )
                results[index] = TemporaryDeliveryError(
                    f"cannot write into Maildir: {_describe(outcome)}"
                )
        if len(todo) > failed:
            logger.info("%d messages written to Maildir %s", len(todo) - failed, self.path)
        return results

    async def send(self, *, mail_from: str, rcpt: str, message: bytes) -> None:
        [error] = await self.send_many(mail_from=mail_from, messages=[(rcpt, message)])
        if error is not None:
            raise error

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> MaildirTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


# --------------------------------------------------------------------------- factory


def transport_from_settings(
    smtp_url: str | None, data_dir: Path
) -> SmtpTransport | MaildirTransport:
    """SMTP when ``AVARA_VIEWER_SMTP_URL`` is set, else a Maildir at ``data_dir / "maildir"``."""
    if smtp_url is None or not smtp_url.strip():
        return MaildirTransport(Path(data_dir) / "maildir")
    return SmtpTransport(parse_smtp_url(smtp_url))
