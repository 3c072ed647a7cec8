"""Fixtures of the single sign-on tests: one real OpenID Provider for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sso.provider_support import OpenIdProvider


@pytest.fixture(scope="session")
def openid_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIdProvider]:
    provider = OpenIdProvider(tmp_path_factory.mktemp("openid-provider"))
    provider.start()
    yield provider
    provider.stop()
