"""OpenID Connect relying party for a clinic's single sign-on: discovery (cached), the
authorization request (code flow with PKCE S256, state and nonce), the code exchange with the
client secret, and ID token validation (signature against the provider's JWKS, fetched again
when a token names a key it has not seen, then issuer, audience, expiry and nonce).

No database here: the caller keeps state, nonce and verifier between the two legs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

SCOPE = "openid email profile"
# Asymmetric only: an HS256 token would be "signed" with our own client secret, and `none`
# is not a signature.
SIGNING_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
METADATA_TTL_SECONDS = 3600.0
# Clock difference tolerated between the provider and us on exp, iat and nbf.
CLOCK_LEEWAY_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 10.0
_MAX_DOCUMENT_BYTES = 1024 * 1024


class OidcError(Exception):
    """Signing in through the provider failed. `reason` is a stable word for pages, tests and
    the log; the message says what went wrong and never contains a token or secret."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint_url(url: str, what: str) -> str:
    """`url` if it is https, or http on a loopback address (a provider on the same host)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    raise OidcError("insecure_url", f"The {what} must be an https URL (http only on loopback).")


def normalise_issuer(issuer: str) -> str:
    """The issuer as an operator types it, checked: https (or loopback http), no query."""
    issuer = issuer.strip()
    parts = urlsplit(issuer)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise OidcError("bad_issuer", "The issuer must be a plain URL (no query or fragment).")
    return check_endpoint_url(issuer, "issuer")


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what to keep until it comes back."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in (from a validated ID token, or userinfo for email)."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    given_name: str | None = None
    family_name: str | None = None


@dataclass
class _Cached:
    value: Any
    fetched_at: float


@dataclass
class RelyingParty:
    """One per process: the HTTP client, and the discovery and JWKS caches per provider."""

    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(
            timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False
        )
    )
    metadata_ttl: float = METADATA_TTL_SECONDS
    _metadata: dict[str, _Cached] = field(default_factory=dict)
    _keys: dict[str, _Cached] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def discover(self, issuer: str, *, refresh: bool = False) -> ProviderMetadata:
        """The provider's discovery document, checked: its issuer is the one configured and
        every endpoint is https (or loopback http)."""
        issuer = normalise_issuer(issuer)
        cached = self._metadata.get(issuer)
        if cached and not refresh and time.monotonic() - cached.fetched_at < self.metadata_ttl:
            return cached.value  # type: ignore[no-any-return]
        document = await self._get_json(
            issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery document"
        )
        announced = document.get("issuer")
        if not isinstance(announced, str) or announced.rstrip("/") != issuer.rstrip("/"):
            raise OidcError(
                "issuer_mismatch",
                f"The discovery document names issuer {announced!r}, not {issuer!r}.",
            )
        endpoints: dict[str, str | None] = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(name)
            if not isinstance(value, str):
                raise OidcError("bad_discovery", f"The discovery document has no {name}.")
            endpoints[name] = check_endpoint_url(value, name)
        userinfo = document.get("userinfo_endpoint")
        endpoints["userinfo_endpoint"] = (
            check_endpoint_url(userinfo, "userinfo_endpoint") if isinstance(userinfo, str) else None
        )
        metadata = ProviderMetadata(
            issuer=announced,
            authorization_endpoint=str(endpoints["authorization_endpoint"]),
            token_endpoint=str(endpoints["token_endpoint"]),
            jwks_uri=str(endpoints["jwks_uri"]),
            userinfo_endpoint=endpoints["userinfo_endpoint"],
        )
        self._metadata[issuer] = _Cached(metadata, time.monotonic())
        return metadata

    def authorization_request(
        self,
        metadata: ProviderMetadata,
        *,
        client_id: str,
        redirect_uri: str,
        login_hint: str | None = None,
    ) -> AuthorizationRequest:
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        code_verifier = secrets.token_urlsafe(64)  # 86 characters: within RFC 7636's 43-128
        extra: dict[str, str] = {}
        if login_hint:
            extra["login_hint"] = login_hint
        url = prepare_grant_uri(
            metadata.authorization_endpoint,
            client_id=client_id,
            response_type="code",
            redirect_uri=redirect_uri,
            scope=SCOPE,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(code_verifier),
            code_challenge_method="S256",
            **extra,
        )
        return AuthorizationRequest(url, state, nonce, code_verifier)

    async def exchange_code(
        self,
        metadata: ProviderMetadata,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        code: str,
        code_verifier: str,
    ) -> dict[str, Any]:
        """The token endpoint's answer for `code` (client_secret_basic, as every provider we
        document accepts it)."""
        try:
            response = await self.http.post(
                metadata.token_endpoint,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "code_verifier": code_verifier,
                },
                # RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
                auth=httpx.BasicAuth(_form_encode(client_id), _form_encode(client_secret)),
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            message = f"The token endpoint did not answer ({exc})."
            raise OidcError("provider_unreachable", message) from exc
        body = _json_object(response)
        if response.status_code != 200 or body is None:
            error = body.get("error") if body else None
            raise OidcError(
                "code_exchange_failed",
                f"The provider refused the code (HTTP {response.status_code}"
                + (f", {error}" if isinstance(error, str) else "")
                + ").",
            )
        if not isinstance(body.get("id_token"), str):
            raise OidcError("no_id_token", "The provider's answer has no ID token.")
        return body

    async def validate_id_token(
        self,
        metadata: ProviderMetadata,
        id_token: str,
        *,
        client_id: str,
        nonce: str,
        now: float | None = None,
    ) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, expiry and nonce hold."""
        try:
            header = extract_compact(id_token.encode()).protected
        except (JoseError, ValueError) as exc:
            raise OidcError("bad_id_token", "The ID token is not a signed JWT.") from exc
        algorithm = header.get("alg")
        if algorithm not in SIGNING_ALGORITHMS:
            raise OidcError("bad_id_token", f"The ID token's algorithm {algorithm!r} is refused.")
        keys = await self._key_set(metadata.jwks_uri, want_kid=header.get("kid"))
        try:
            token = jwt.decode(id_token, keys, algorithms=[algorithm])
        except (JoseError, ValueError) as exc:
            raise OidcError("bad_signature", "The ID token's signature does not verify.") from exc
        claims = dict(token.claims)
        registry = jwt.JWTClaimsRegistry(
            now=int(now if now is not None else time.time()),
            leeway=CLOCK_LEEWAY_SECONDS,
            iss={"essential": True, "value": metadata.issuer},
            sub={"essential": True},
            aud={"essential": True, "value": client_id},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError as exc:
            raise OidcError("expired_id_token", "The ID token has expired.") from exc
        except JoseError as exc:
            claim = getattr(exc, "description", "") or str(exc)
            raise OidcError("bad_claims", f"The ID token's claims do not hold ({claim}).") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != client_id:
            raise OidcError("bad_claims", "The ID token is for several audiences, not us alone.")
        return claims

    async def identity(
        self,
        metadata: ProviderMetadata,
        tokens: dict[str, Any],
        *,
        client_id: str,
        nonce: str,
    ) -> Identity:
        """Who signed in: the validated ID token's `sub`, and the email address from it (or,
        when the provider keeps email out of ID tokens, from userinfo for the same `sub`)."""
        claims = await self.validate_id_token(
            metadata, tokens["id_token"], client_id=client_id, nonce=nonce
        )
        if not isinstance(claims.get("email"), str) and metadata.userinfo_endpoint:
            access_token = tokens.get("access_token")
            if isinstance(access_token, str):
                info = await self._userinfo(metadata.userinfo_endpoint, access_token)
                if info.get("sub") == claims["sub"]:
                    claims = {**info, **claims, "email": info.get("email")}
                    claims["email_verified"] = info.get("email_verified")
        email = claims.get("email")
        return Identity(
            issuer=metadata.issuer,
            subject=str(claims["sub"]),
            email=email.strip() if isinstance(email, str) and email.strip() else None,
            email_verified=email_is_verified(claims),
            given_name=_text(claims.get("given_name")),
            family_name=_text(claims.get("family_name")),
        )

    async def _key_set(self, jwks_uri: str, *, want_kid: object) -> KeySet:
        """The provider's keys; fetched again once when a token names a key not among them
        (the provider rotated its keys)."""
        lock = self._locks.setdefault(jwks_uri, asyncio.Lock())
        async with lock:
            cached = self._keys.get(jwks_uri)
            if cached is not None and (want_kid is None or want_kid in _kids(cached.value)):
                return cached.value  # type: ignore[no-any-return]
            keys = _import_keys(await self._get_json(jwks_uri, "JWKS"))
            self._keys[jwks_uri] = _Cached(keys, time.monotonic())
            return keys

    async def _userinfo(self, url: str, access_token: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url, headers={"Authorization": f"Bearer {access_token}"})
        except httpx.HTTPError as exc:
            message = f"The userinfo endpoint did not answer ({exc})."
            raise OidcError("provider_unreachable", message) from exc
        body = _json_object(response)
        return body if response.status_code == 200 and body is not None else {}

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise OidcError("provider_unreachable", f"Could not fetch the {what} ({exc}).") from exc
        body = _json_object(response)
        if response.status_code != 200 or body is None:
            raise OidcError(
                "provider_unreachable",
                f"The {what} at {url} answered HTTP {response.status_code}, not a JSON object.",
            )
        return body


def email_is_verified(claims: dict[str, Any]) -> bool:
    """Whether the provider vouches for the address. Some send "true" as a string; Entra ID
    sends no email_verified and says instead, in `xms_edov`, that the domain is verified."""
    verified = claims.get("email_verified", claims.get("xms_edov"))
    return verified is True or (isinstance(verified, str) and verified.lower() == "true")


def _text(value: object) -> str | None:
    return value.strip()[:200] or None if isinstance(value, str) else None


def _kids(keys: KeySet) -> set[Any]:
    return {key.kid for key in keys.keys}


def _import_keys(document: dict[str, Any]) -> KeySet:
    usable = [
        key
        for key in document.get("keys", [])
        if isinstance(key, dict)
        and key.get("kty") in {"RSA", "EC", "OKP"}
        and key.get("use", "sig") == "sig"
    ]
    try:
        return KeySet.import_key_set({"keys": usable})
    except (JoseError, ValueError, TypeError) as exc:
        raise OidcError("bad_jwks", "The provider's JWKS could not be read.") from exc


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    if len(response.content) > _MAX_DOCUMENT_BYTES:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _form_encode(value: str) -> str:
    return quote_plus(value)
