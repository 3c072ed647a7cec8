"""Fixtures for the avara_viewer.email tests: import path and a real aiosmtpd server.

Deliberately no __init__.py in this directory: with pytest's default "prepend" import mode
a package named ``email`` here would put ``server/tests`` on sys.path and could shadow the
stdlib ``email`` package.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("avara_viewer") is None:  # not installed: run from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    peer: Any  # (host, port) of the client side: one value per SMTP connection


@dataclass
class RecordingHandler:
    """Stores every accepted message; some recipient addresses provoke errors."""

    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local == "reject550":
            return "550 5.1.1 No such user here"
        if local == "defer451":
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if envelope.rcpt_tos and envelope.rcpt_tos[0].split("@", 1)[0] == "data554":
            return "554 5.6.0 Message content rejected"
        with self.lock:
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.content),
                    session.peer,
                )
            )
        return "250 Message accepted for delivery"


USERNAME = "mailer@clinic.example"
PASSWORD = "p@ss:wörd/%"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode() == USERNAME and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok)


@dataclass
class SmtpServer:
    handler: RecordingHandler
    controller: Controller
    port: int

    @property
    def host(self) -> str:
        return "127.0.0.1"


def _start(**smtp_kwargs: Any) -> SmtpServer:
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **smtp_kwargs)
    controller.start()
    return SmtpServer(handler=handler, controller=controller, port=port)


@pytest.fixture
def unused_port() -> Callable[[], int]:
    """A function returning a currently free TCP port on 127.0.0.1."""
    return free_port


@pytest.fixture
def smtp_credentials() -> tuple[str, str]:
    """(username, password) that ``smtp_auth_server`` accepts."""
    return USERNAME, PASSWORD


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = _start()
    try:
        yield server
    finally:
        server.controller.stop()


@pytest.fixture
def smtp_auth_server() -> Iterator[SmtpServer]:
    server = _start(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    try:
        yield server
    finally:
        server.controller.stop()
