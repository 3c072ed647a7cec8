from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from avara_viewer.email import (
    PermanentDeliveryError,
    SmtpConfig,
    SmtpTransport,
    TemporaryDeliveryError,
    build_message,
    parse_smtp_url,
)

pytestmark = pytest.mark.asyncio

SECRET_LINK = "https://viewer.example/invitations/accept?token=SECRET-b6a1c0ffee"
FROM = "no-reply@viewer.example"


def message(to: str, n: int = 0) -> bytes:
    return build_message(
        mail_from=f"Avara Viewer <{FROM}>",
        to=to,
        subject=f"Invitation {n}",
        text=f"Accept: {SECRET_LINK}\n.\n..dots\n",
        html=f'<p><a href="{SECRET_LINK}">Accept</a></p>',
        message_id=f"outbox-{n}@avara-viewer",
    )


def transport_for(server: Any, **kwargs) -> SmtpTransport:
    return SmtpTransport(SmtpConfig(host=server.host, port=server.port), timeout=5, **kwargs)


# --------------------------------------------------------------------------- SMTP delivery


async def test_send_plain(smtp_server: Any) -> None:
    raw = message("dr.johnson@hospital.org")
    async with transport_for(smtp_server) as transport:
        await transport.send(mail_from=FROM, rcpt="dr.johnson@hospital.org", message=raw)
    [got] = smtp_server.handler.messages
    assert got.mail_from == FROM and got.rcpt_tos == ["dr.johnson@hospital.org"]
    parsed = BytesParser(policy=policy.default).parsebytes(got.content)
    assert parsed["Message-ID"] == "<outbox-0@avara-viewer>"
    assert SECRET_LINK in parsed.get_body(("plain",)).get_content()
    assert got.content.rstrip(b"\r\n") == raw.rstrip(b"\r\n")  # byte for byte (dot-stuffing undone)


async def test_send_with_auth(smtp_auth_server: Any, smtp_credentials: tuple[str, str]) -> None:
    USERNAME, PASSWORD = smtp_credentials
    userinfo = f"{quote(USERNAME, safe='')}:{quote(PASSWORD, safe='')}"
    url = f"smtp://{userinfo}@127.0.0.1:{smtp_auth_server.port}"
    async with SmtpTransport(parse_smtp_url(url), timeout=5) as transport:
        await transport.send(
            mail_from=FROM, rcpt="a@hospital.org", message=message("a@hospital.org")
        )
    assert len(smtp_auth_server.handler.messages) == 1


async def test_auth_required_but_missing_or_wrong_is_temporary(
    smtp_auth_server: Any, smtp_credentials: tuple[str, str]
) -> None:
    USERNAME, _ = smtp_credentials
    port = smtp_auth_server.port
    for url in (
        f"smtp://127.0.0.1:{port}",
        f"smtp://{quote(USERNAME, safe='')}:wrong@127.0.0.1:{port}",
    ):
        # (aiosmtpd answers a failed AUTH slowly: keep the timeout short)
        async with SmtpTransport(parse_smtp_url(url), timeout=1) as transport:
            with pytest.raises(TemporaryDeliveryError):
                await transport.send(
                    mail_from=FROM, rcpt="a@hospital.org", message=message("a@hospital.org")
                )
    assert smtp_auth_server.handler.messages == []


async def test_550_recipient_is_permanent_451_is_temporary(smtp_server: Any) -> None:
    async with transport_for(smtp_server) as transport:
        with pytest.raises(PermanentDeliveryError) as permanent:
            await transport.send(
                mail_from=FROM, rcpt="reject550@x.example", message=message("reject550@x.example")
            )
        assert permanent.value.code == 550 and "No such user" in str(permanent.value)
        with pytest.raises(TemporaryDeliveryError) as temporary:
            await transport.send(
                mail_from=FROM, rcpt="defer451@x.example", message=message("defer451@x.example")
            )
        assert temporary.value.code == 451
        with pytest.raises(PermanentDeliveryError) as data_refused:
            await transport.send(
                mail_from=FROM, rcpt="data554@x.example", message=message("data554@x.example")
            )
        assert data_refused.value.code == 554
        # the session survives refusals (aiosmtplib sent RSET): same connection delivers next
        await transport.send(mail_from=FROM, rcpt="ok@x.example", message=message("ok@x.example"))
        assert transport.connections_opened == 1
    assert [m.rcpt_tos for m in smtp_server.handler.messages] == [["ok@x.example"]]


async def test_connection_refused_is_temporary(unused_port: Callable[[], int]) -> None:
    transport = SmtpTransport(SmtpConfig("127.0.0.1", unused_port()), timeout=5)
    with pytest.raises(TemporaryDeliveryError, match="cannot connect"):
        await transport.send(mail_from=FROM, rcpt="a@b.example", message=message("a@b.example"))
    await transport.aclose()


async def _fake_server(handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_disconnect_mid_transaction_is_temporary_and_connection_discarded() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 fake ESMTP\r\n")
        while line := await reader.readline():
            if line.upper().startswith((b"EHLO", b"HELO")):
                writer.write(b"250 fake\r\n")
            elif line.upper().startswith(b"MAIL"):
                break  # hang up
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
        writer.close()

    server, port = await _fake_server(handle)
    async with server, SmtpTransport(SmtpConfig("127.0.0.1", port), timeout=5) as transport:
        for _ in range(2):
            with pytest.raises(TemporaryDeliveryError):
                await transport.send(
                    mail_from=FROM, rcpt="a@b.example", message=message("a@b.example")
                )
        assert transport.connections_opened == 2  # the broken one was not reused
        assert not transport._idle


async def test_unresponsive_server_times_out_as_temporary() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)  # never greets
        writer.close()

    server, port = await _fake_server(handle)
    async with server:
        transport = SmtpTransport(SmtpConfig("127.0.0.1", port), timeout=0.3)
        with pytest.raises(TemporaryDeliveryError):
            await transport.send(mail_from=FROM, rcpt="a@b.example", message=message("a@b.example"))
        await transport.aclose()
        server.close()


async def test_421_closes_connection(smtp_server: Any) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 fake ESMTP\r\n")
        while line := await reader.readline():
            command = line.upper()
            if command.startswith((b"EHLO", b"HELO")):
                writer.write(b"250 fake\r\n")
            elif command.startswith(b"MAIL"):
                writer.write(b"421 4.7.0 Too many messages, closing\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
        writer.close()

    server, port = await _fake_server(handle)
    async with server, SmtpTransport(SmtpConfig("127.0.0.1", port), timeout=5) as transport:
        with pytest.raises(TemporaryDeliveryError) as exc:
            await transport.send(mail_from=FROM, rcpt="a@b.example", message=message("a@b.example"))
        assert exc.value.code == 421
        assert not transport._idle


async def test_pool_reuses_connections(smtp_server: Any) -> None:
    async with transport_for(smtp_server, max_connections=3) as transport:
        for n in range(20):  # sequential: a single connection
            await transport.send(
                mail_from=FROM, rcpt=f"u{n}@x.example", message=message(f"u{n}@x.example", n)
            )
        assert transport.connections_opened == 1

        async def one(n: int) -> None:
            await transport.send(
                mail_from=FROM, rcpt=f"c{n}@x.example", message=message(f"c{n}@x.example", n)
            )

        await asyncio.gather(*(one(n) for n in range(60)))  # concurrent: several, never more than 3
        assert 1 < transport.connections_opened <= 3
    messages = smtp_server.handler.messages
    assert len(messages) == 80
    assert len({m.peer for m in messages}) == transport.connections_opened
    assert len({m.content for m in messages}) == 80


async def test_recycles_after_max_messages(smtp_server: Any) -> None:
    async with transport_for(
        smtp_server, max_connections=1, max_messages_per_connection=5
    ) as transport:
        for n in range(12):
            await transport.send(
                mail_from=FROM, rcpt="a@x.example", message=message("a@x.example", n)
            )
        assert transport.connections_opened == 3
    assert len(smtp_server.handler.messages) == 12


async def test_server_restart_is_survived(smtp_server: Any) -> None:
    async with transport_for(smtp_server, idle_check_after=0.0) as transport:
        await transport.send(mail_from=FROM, rcpt="a@x.example", message=message("a@x.example", 1))
        smtp_server.controller.stop()
        # a fresh server on the same port: the pooled connection is dead
        smtp_server.controller = Controller(
            smtp_server.handler, hostname="127.0.0.1", port=smtp_server.port
        )
        smtp_server.controller.start()
        await transport.send(mail_from=FROM, rcpt="a@x.example", message=message("a@x.example", 2))
        assert transport.connections_opened == 2
    assert len(smtp_server.handler.messages) == 2


async def test_closed_transport_refuses_temporarily(smtp_server: Any) -> None:
    transport = transport_for(smtp_server)
    await transport.send(mail_from=FROM, rcpt="a@x.example", message=message("a@x.example"))
    await transport.aclose()
    with pytest.raises(TemporaryDeliveryError):
        await transport.send(mail_from=FROM, rcpt="a@x.example", message=message("a@x.example"))


@pytest.mark.parametrize("field", ["mail_from", "rcpt"])
async def test_envelope_crlf_rejected(smtp_server: Any, field: str) -> None:
    kwargs = {"mail_from": FROM, "rcpt": "a@x.example"}
    kwargs[field] += "\r\nRCPT TO:<victim@example.com>"
    async with transport_for(smtp_server) as transport:
        with pytest.raises(ValueError):
            await transport.send(message=message("a@x.example"), **kwargs)
    assert smtp_server.handler.messages == []


async def test_logs_never_contain_bodies_or_secrets(
    smtp_server: Any, caplog: pytest.LogCaptureFixture, unused_port: Callable[[], int]
) -> None:
    caplog.set_level(logging.DEBUG, logger="avara_viewer.email")
    config = SmtpConfig(host=smtp_server.host, port=smtp_server.port, password="hunter2")
    async with SmtpTransport(config, timeout=5) as transport:
        await transport.send(
            mail_from=FROM, rcpt="dr.johnson@hospital.org", message=message("x@y.example")
        )
        with pytest.raises(PermanentDeliveryError):
            await transport.send(
                mail_from=FROM, rcpt="reject550@x.example", message=message("x@y.example")
            )
    bad = SmtpTransport(SmtpConfig("127.0.0.1", unused_port()), timeout=5)
    with pytest.raises(TemporaryDeliveryError):
        await bad.send(mail_from=FROM, rcpt="a@b.example", message=message("a@b.example"))
    assert caplog.records, "expected some log output"
    logged = caplog.text
    assert "SECRET" not in logged and "hunter2" not in logged
    assert "dr.johnson@" not in logged  # recipients are masked
    assert all(r.name == "avara_viewer.email" for r in caplog.records)
