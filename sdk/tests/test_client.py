"""Client construction: credentials, base URL, headers, options, lifetime."""

from __future__ import annotations

import httpx
import pytest
from avara_fakes import API_KEY, BASE_URL, USER, FakeAPI

import avara
from avara import AsyncAvara, Avara, AvaraError


def fake_client(api: FakeAPI, **kwargs: object) -> Avara:
    return Avara(http_client=httpx.Client(transport=httpx.MockTransport(api.handle)), **kwargs)  # type: ignore[arg-type]


def test_sends_bearer_key_and_user_agent(api: FakeAPI, client: Avara) -> None:
    api.reply(json=USER)
    client.viewer.users.retrieve("usr_1")
    assert api.last.headers["authorization"] == f"Bearer {API_KEY}"
    assert api.last.headers["user-agent"] == f"avara-python/{avara.__version__}"
    assert api.last.headers["accept"] == "application/json"
    assert str(api.last.url) == f"{BASE_URL}/v1/viewer/users/usr_1"


def test_key_and_base_url_come_from_the_environment(
    api: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVARA_API_KEY", "avk_from_env")
    monkeypatch.setenv("AVARA_BASE_URL", "http://env.example:9000/")
    api.reply(json=USER)
    fake_client(api).viewer.users.retrieve("usr_1")
    assert api.last.headers["authorization"] == "Bearer avk_from_env"
    assert str(api.last.url) == "http://env.example:9000/v1/viewer/users/usr_1"


def test_arguments_win_over_the_environment(api: FakeAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVARA_API_KEY", "avk_from_env")
    monkeypatch.setenv("AVARA_BASE_URL", "http://env.example:9000")
    api.reply(json=USER)
    fake_client(api, api_key="avk_arg", base_url="http://arg.example").viewer.users.retrieve("u")
    assert api.last.headers["authorization"] == "Bearer avk_arg"
    assert api.last.url.host == "arg.example"


def test_default_base_url_is_local(api: FakeAPI) -> None:
    api.reply(json=USER)
    fake_client(api, api_key="k").viewer.users.retrieve("usr_1")
    assert str(api.last.url) == "http://127.0.0.1:8000/v1/viewer/users/usr_1"


@pytest.mark.parametrize("client_class", [Avara, AsyncAvara])
def test_missing_key_fails_at_construction(
    client_class: type[Avara] | type[AsyncAvara], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(AvaraError, match="AVARA_API_KEY"):
        client_class()
    monkeypatch.setenv("AVARA_API_KEY", "")
    with pytest.raises(AvaraError, match="api_key"):
        client_class()


def test_default_and_extra_headers(api: FakeAPI) -> None:
    api.reply(json=USER)
    client = fake_client(api, api_key="k", default_headers={"X-Clinic-App": "pacs-sync"})
    client.viewer.users.retrieve("usr_1", extra_headers={"X-Trace": "t1"}, extra_query={"a": 1})
    assert api.last.headers["x-clinic-app"] == "pacs-sync"
    assert api.last.headers["x-trace"] == "t1"
    assert api.last.url.params["a"] == "1"


def test_timeout_default_client_level_and_per_call(api: FakeAPI) -> None:
    api.reply(json=USER)
    client = fake_client(api, api_key="k")
    client.viewer.users.retrieve("usr_1")
    assert api.last.extensions["timeout"] == {
        "connect": 5.0,
        "read": 60.0,
        "write": 60.0,
        "pool": 60.0,
    }
    fake_client(api, api_key="k", timeout=3.0).viewer.users.retrieve("usr_1")
    assert api.last.extensions["timeout"]["read"] == 3.0
    client.viewer.users.retrieve("usr_1", timeout=0.25)
    assert api.last.extensions["timeout"]["read"] == 0.25


def test_with_options_copies_without_changing_the_original(api: FakeAPI) -> None:
    api.reply(json=USER)
    client = fake_client(api, api_key="k", default_headers={"X-A": "1"})
    other = client.with_options(
        api_key="k2", max_retries=0, timeout=9.0, default_headers={"X-B": "2"}
    )
    assert (other.max_retries, other.timeout) == (0, 9.0)
    assert client.max_retries == 2
    other.viewer.users.retrieve("usr_1")
    assert api.last.headers["authorization"] == "Bearer k2"
    assert (api.last.headers["x-a"], api.last.headers["x-b"]) == ("1", "2")
    client.viewer.users.retrieve("usr_1")
    assert api.last.headers["authorization"] == "Bearer k"
    assert "x-b" not in api.last.headers


async def test_async_with_options(api: FakeAPI) -> None:
    api.reply(json=USER)
    http_client = httpx.AsyncClient(transport=httpx.MockTransport(api.handle))
    async with AsyncAvara(api_key="k", http_client=http_client) as client:
        await client.with_options(api_key="k2").viewer.users.retrieve("usr_1")
    assert api.last.headers["authorization"] == "Bearer k2"


def test_context_manager_closes_its_own_pool_not_yours() -> None:
    with Avara(api_key="k") as client:
        own_pool = client._client
    assert own_pool.is_closed
    yours = httpx.Client()
    with Avara(api_key="k", http_client=yours):
        pass
    assert not yours.is_closed
    yours.close()


async def test_async_close() -> None:
    client = AsyncAvara(api_key="k")
    await client.close()
    assert client._client.is_closed


def test_resources_are_cached(client: Avara) -> None:
    assert client.viewer is client.viewer
    assert client.viewer.users.invitations is client.viewer.users.invitations
