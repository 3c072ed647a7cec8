"""Fixtures: the SMTP sink, and the server on each database (see support.py).

Every test that takes `server` runs once on SQLite and once on PostgreSQL (set
AVARA_TEST_BACKENDS=sqlite to run one).
"""

from __future__ import annotations

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
def server(backend: str, smtp_sink: SmtpSink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
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
    made: list[Server] = []

    def make(smtp_url: str | None = None, **settings: str) -> Server:
        srv = Server(backend, tmp_path / f"srv{len(made)}", smtp_url, **settings)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        try:
            srv.destroy()
        except Exception:
            shutil.rmtree(srv.data_dir, ignore_errors=True)
