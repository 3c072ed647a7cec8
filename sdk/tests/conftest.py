"""Fixtures: clients wired to an in-memory fake of the API, and a recorder of retry sleeps."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

# The repository runs pytest in importlib mode, which puts no test directory on sys.path;
# the test modules import their shared fakes from here.
sys.path.insert(0, str(Path(__file__).parent))

from avara_fakes import API_KEY, BASE_URL, FakeAPI

import avara._base_client
from avara import AsyncAvara, Avara


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AVARA_API_KEY", raising=False)
    monkeypatch.delenv("AVARA_BASE_URL", raising=False)


@pytest.fixture
def api() -> FakeAPI:
    return FakeAPI()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays the client waited before each retry, recorded instead of slept."""
    delays: list[float] = []

    async def record_async(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(avara._base_client, "_sleep", delays.append)
    monkeypatch.setattr(avara._base_client, "_async_sleep", record_async)
    return delays


@pytest.fixture
def client(api: FakeAPI, sleeps: list[float]) -> Iterator[Avara]:
    http_client = httpx.Client(transport=httpx.MockTransport(api.handle))
    with Avara(api_key=API_KEY, base_url=BASE_URL, http_client=http_client) as client:
        yield client


@pytest.fixture
def async_client(api: FakeAPI, sleeps: list[float]) -> AsyncAvara:
    http_client = httpx.AsyncClient(transport=httpx.MockTransport(api.handle))
    return AsyncAvara(api_key=API_KEY, base_url=BASE_URL, http_client=http_client)
