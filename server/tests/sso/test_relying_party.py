"""The OpenID Connect relying party (accounts/oidc.py) against a real OpenID Provider: the code
flow with PKCE, and every check of the ID token — signature (with the provider's key rotation),
issuer, audience, expiry, nonce. The browser tests drive the same code through the dashboard."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from avara_viewer.accounts.oidc import (
    OidcError,
    ProviderMetadata,
    RelyingParty,
    normalise_issuer,
)
from sso.provider_support import OpenIdProvider, sign_in_over_http

REDIRECT_URI = "http://127.0.0.1:8123/auth/oidc/callback"


@pytest.fixture
async def relying_party() -> AsyncIterator[RelyingParty]:
    party = RelyingParty()
    yield party
    await party.aclose()


async def _sign_in(
    party: RelyingParty, provider: OpenIdProvider, login: str
) -> tuple[ProviderMetadata, dict, str]:
    """Discovery, the provider's login and consent pages, the code exchange: (metadata,
    token response, nonce)."""
    metadata = await party.discover(provider.issuer)
    request = party.authorization_request(
        metadata, client_id=provider.client_id, redirect_uri=REDIRECT_URI, login_hint=login
    )
    query = parse_qs(urlsplit(request.url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == [request.state] and query["nonce"] == [request.nonce]
    back = sign_in_over_http(request.url, login, REDIRECT_URI)
    returned = parse_qs(urlsplit(back).query)
    assert returned["state"] == [request.state]
    tokens = await party.exchange_code(
        metadata,
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        redirect_uri=REDIRECT_URI,
        code=returned["code"][0],
        code_verifier=request.code_verifier,
    )
    return metadata, tokens, request.nonce


async def test_the_code_flow_gives_the_verified_email_and_subject(
    relying_party: RelyingParty, openid_provider: OpenIdProvider
) -> None:
    metadata, tokens, nonce = await _sign_in(relying_party, openid_provider, "ana@clinic.example")
    identity = await relying_party.identity(
        metadata, tokens, client_id=openid_provider.client_id, nonce=nonce
    )
    assert identity.issuer == openid_provider.issuer
    assert identity.subject == "ana@clinic.example"
    assert identity.email == "ana@clinic.example"
    assert identity.email_verified is True


async def test_an_unverified_email_is_reported_as_such(
    relying_party: RelyingParty, openid_provider: OpenIdProvider
) -> None:
    metadata, tokens, nonce = await _sign_in(
        relying_party, openid_provider, "unverified:bo@clinic.example"
    )
    identity = await relying_party.identity(
        metadata, tokens, client_id=openid_provider.client_id, nonce=nonce
    )
    assert identity.email == "bo@clinic.example"
    assert identity.email_verified is False


async def test_another_nonce_or_audience_is_refused(
    relying_party: RelyingParty, openid_provider: OpenIdProvider
) -> None:
    metadata, tokens, nonce = await _sign_in(relying_party, openid_provider, "cy@clinic.example")
    with pytest.raises(OidcError) as wrong_nonce:
        await relying_party.validate_id_token(
            metadata, tokens["id_token"], client_id=openid_provider.client_id, nonce=nonce + "x"
        )
    assert wrong_nonce.value.reason == "bad_claims"
    with pytest.raises(OidcError) as wrong_audience:
        await relying_party.validate_id_token(
            metadata, tokens["id_token"], client_id="another-client", nonce=nonce
        )
    assert wrong_audience.value.reason == "bad_claims"


async def test_a_tampered_or_unsigned_id_token_is_refused(
    relying_party: RelyingParty, openid_provider: OpenIdProvider
) -> None:
    metadata, tokens, nonce = await _sign_in(relying_party, openid_provider, "di@clinic.example")
    header, payload, signature = tokens["id_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["email"] = "owner@clinic.example"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(OidcError) as tampered:
        await relying_party.validate_id_token(
            metadata,
            f"{header}.{forged}.{signature}",
            client_id=openid_provider.client_id,
            nonce=nonce,
        )
    assert tampered.value.reason == "bad_signature"
    none_header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    with pytest.raises(OidcError) as unsigned:
        await relying_party.validate_id_token(
            metadata, f"{none_header}.{forged}.", client_id=openid_provider.client_id, nonce=nonce
        )
    assert unsigned.value.reason == "bad_id_token"


async def test_a_wrong_code_verifier_or_a_reused_code_is_refused_by_the_provider(
    relying_party: RelyingParty, openid_provider: OpenIdProvider
) -> None:
    metadata = await relying_party.discover(openid_provider.issuer)
    request = relying_party.authorization_request(
        metadata, client_id=openid_provider.client_id, redirect_uri=REDIRECT_URI
    )
    back = sign_in_over_http(request.url, "ed@clinic.example", REDIRECT_URI)
    code = parse_qs(urlsplit(back).query)["code"][0]
    exchange = {
        "client_id": openid_provider.client_id,
        "client_secret": openid_provider.client_secret,
        "redirect_uri": REDIRECT_URI,
        "code": code,
    }
    with pytest.raises(OidcError) as wrong_verifier:
        await relying_party.exchange_code(metadata, code_verifier="x" * 64, **exchange)
    assert wrong_verifier.value.reason == "code_exchange_failed"
    tokens = await relying_party.exchange_code(
        metadata, code_verifier=request.code_verifier, **exchange
    )
    assert tokens["id_token"]
    with pytest.raises(OidcError) as reused:
        await relying_party.exchange_code(metadata, code_verifier=request.code_verifier, **exchange)
    assert reused.value.reason == "code_exchange_failed"


async def test_a_wrong_client_secret_is_refused(
    relying_party: RelyingParty, openid_provider: OpenIdProvider
) -> None:
    metadata = await relying_party.discover(openid_provider.issuer)
    request = relying_party.authorization_request(
        metadata, client_id=openid_provider.client_id, redirect_uri=REDIRECT_URI
    )
    back = sign_in_over_http(request.url, "fa@clinic.example", REDIRECT_URI)
    with pytest.raises(OidcError) as refused:
        await relying_party.exchange_code(
            metadata,
            client_id=openid_provider.client_id,
            client_secret="not-the-secret",
            redirect_uri=REDIRECT_URI,
            code=parse_qs(urlsplit(back).query)["code"][0],
            code_verifier=request.code_verifier,
        )
    assert refused.value.reason == "code_exchange_failed"


async def test_key_rotation_at_the_provider_is_followed(
    relying_party: RelyingParty, openid_provider: OpenIdProvider
) -> None:
    metadata, old_tokens, old_nonce = await _sign_in(
        relying_party, openid_provider, "gu@clinic.example"
    )
    await relying_party.identity(
        metadata, old_tokens, client_id=openid_provider.client_id, nonce=old_nonce
    )
    old_kid = openid_provider.kids[0]
    new_kid = openid_provider.rotate_keys()
    assert [k["kid"] for k in openid_provider.jwks()["keys"]] == [new_kid]
    # Same relying party, keys of the old rotation cached: the unknown kid makes it refetch.
    metadata, tokens, nonce = await _sign_in(relying_party, openid_provider, "gu@clinic.example")
    identity = await relying_party.identity(
        metadata, tokens, client_id=openid_provider.client_id, nonce=nonce
    )
    assert identity.email == "gu@clinic.example"
    # A token signed with the withdrawn key no longer verifies once the keys were refetched.
    assert old_kid != new_kid
    with pytest.raises(OidcError) as withdrawn:
        await relying_party.validate_id_token(
            metadata, old_tokens["id_token"], client_id=openid_provider.client_id, nonce=old_nonce
        )
    assert withdrawn.value.reason == "bad_signature"


async def test_an_expired_id_token_is_refused(
    relying_party: RelyingParty, openid_provider: OpenIdProvider
) -> None:
    openid_provider.issue_expired_id_tokens(True)
    try:
        metadata, tokens, nonce = await _sign_in(
            relying_party, openid_provider, "ha@clinic.example"
        )
    finally:
        openid_provider.issue_expired_id_tokens(False)
    with pytest.raises(OidcError) as expired:
        await relying_party.identity(
            metadata, tokens, client_id=openid_provider.client_id, nonce=nonce
        )
    assert expired.value.reason == "expired_id_token"


async def test_a_discovery_document_for_another_issuer_is_refused(
    relying_party: RelyingParty, openid_provider: OpenIdProvider
) -> None:
    with pytest.raises(OidcError) as mismatch:
        await relying_party.discover(openid_provider.issuer.replace("127.0.0.1", "localhost"))
    assert mismatch.value.reason == "issuer_mismatch"


@pytest.mark.parametrize(
    "issuer",
    ["http://idp.hospital.example", "ftp://127.0.0.1/x", "https://idp.example/?a=b", "idp.example"],
)
def test_an_issuer_must_be_https_except_on_loopback(issuer: str) -> None:
    with pytest.raises(OidcError):
        normalise_issuer(issuer)
    assert normalise_issuer("https://login.example.org/tenant/v2.0") == (
        "https://login.example.org/tenant/v2.0"
    )
    assert normalise_issuer("http://[::1]:9000") == "http://[::1]:9000"
