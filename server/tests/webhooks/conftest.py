"""Fixtures of the webhook tests: the receiver, and a server with a shrunk retry schedule."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import Clinic, Server, SmtpSink
from webhooks.receiver import FAST_RETRIES, Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver().start()
    yield made
    made.stop()
    assert not made.forged, made.forged


@pytest.fixture(scope="session")
def hooks_server(
    backend: str, smtp_sink: SmtpSink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    srv = Server(
        backend, tmp_path_factory.mktemp(f"hooks-{backend}"), smtp_sink.url, **FAST_RETRIES
    )
    srv.start()
    yield srv
    srv.destroy()


@pytest.fixture(scope="session")
def shared_hooks_clinic(hooks_server: Server) -> Clinic:
    return hooks_server.create_clinic("Webhook Clinic")


@pytest.fixture
def hooks_clinic(shared_hooks_clinic: Clinic) -> Iterator[Clinic]:
    """The clinic of the webhook tests; the endpoints a test made are deleted after it, so
    each test's endpoints see only the events of its own changes."""
    yield shared_hooks_clinic
    client = shared_hooks_clinic.client
    for endpoint in client.get("/v1/viewer/webhook-endpoints", params={"limit": 100}).json()[
        "endpoints"
    ]:
        client.delete(f"/v1/viewer/webhook-endpoints/{endpoint['endpointId']}")
