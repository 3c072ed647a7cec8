"""Fixtures: the SMTP sink, and the server on each database (see support.py).

Every test that takes `server` runs once on SQLite and once on PostgreSQL (set
AVARA_TEST_BACKENDS=sqlite to run one).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import BACKENDS, Clinic, Server, SmtpSink


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


ServerFactory = Callable[..., Server]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def server(
    backend: str, smtp_sink: SmtpSink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    srv = Server(backend, tmp_path_factory.mktemp(f"server-{backend}"), smtp_sink.url)
    srv.start()
    yield srv
    srv.destroy()


@pytest.fixture(scope="session")
def clinic(server: Server) -> Clinic:
    """A clinic shared by the tests that only need a place to invite into."""
    return server.create_clinic("Shared Test Clinic")


@pytest.fixture
def fresh_server(backend: str, tmp_path: Path) -> Iterator[ServerFactory]:
    """A private server for tests that kill, restart or reconfigure it."""
    with _servers(tmp_path) as make:
        yield lambda smtp_url=None, **settings: make(backend, smtp_url, **settings)


@pytest.fixture
def server_on(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """A private server on a database named by the test: for what only one database has."""
    with _servers(tmp_path) as make:
        yield make


@contextlib.contextmanager
def _servers(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def make(backend: str, smtp_url: str | None = None, **settings: str) -> Server:
        srv = Server(backend, tmp_path / f"srv{len(made)}", smtp_url, **settings)
        made.append(srv)
        return srv

    try:
        yield make
    finally:
        for srv in made:
            try:
                srv.destroy()
            except Exception:
                shutil.rmtree(srv.data_dir, ignore_errors=True)
