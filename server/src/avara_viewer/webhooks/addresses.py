"""Which webhook URLs and addresses may be called: no SSRF into the server's own network.

By default only https URLs whose host resolves to public addresses only; every address the
name resolves to is checked, when the endpoint is saved and again at each connection. The
check at connection time is made by the HTTP client's network backend, which connects to the
very address it checked (the TLS handshake still verifies the certificate against the host
name), so a DNS answer that changes between check and use cannot slip through.
`AVARA_VIEWER_WEBHOOK_ALLOW_PRIVATE=true` also allows plain http and private, loopback and
link-local addresses (tests, on-premise receivers).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from .. import aio

MAX_URL_LENGTH = 2048


class AddressRefused(Exception):
    """The URL or an address it resolves to may not be called."""


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
    return ip.is_global and not ip.is_multicast


def check_url_form(url: str, *, allow_private: bool) -> str | None:
    """Why the URL cannot be a webhook endpoint (without resolving it), or None."""
    if len(url) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        return "must be an https URL" if not allow_private else "must be an http or https URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (user:password@)"
    if parts.fragment:
        return "must not have a fragment (#...)"
    if port == 0:
        return "must not use port 0"
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        return "must not contain spaces or control characters"
    return None


async def resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refused_among(addresses: Iterable[str]) -> list[str]:
    return [a for a in addresses if not is_public(a)]


async def check_url(url: str, *, allow_private: bool) -> str | None:
    """Why the URL cannot be a webhook endpoint (resolving its host), or None."""
    problem = check_url_form(url, allow_private=allow_private)
    if problem is not None or allow_private:
        return problem
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        addresses = await aio.within(resolve(host, parts.port or 443), 5)
    except (OSError, TimeoutError):
        return f"host {host} does not resolve"
    refused = refused_among(addresses)
    if refused or not addresses:
        return (
            f"must reach public addresses only; {host} resolves to {', '.join(refused)} "
            "(private, loopback, link-local or reserved)"
        )
    return None


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked one."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await aio.within(resolve(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not self._allow_private:
            refused = refused_among(addresses)
            if refused:
                raise AddressRefused(
                    f"{host} resolves to {', '.join(refused)}, which is not a public address"
                )
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"{host} has no address")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("unix sockets are not webhook endpoints")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose every connection is checked."""

    def __init__(self, *, allow_private: bool, max_connections: int) -> None:
        super().__init__(trust_env=False)
        # The pool httpx builds takes no network backend; build the same pool with ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
            network_backend=_GuardedBackend(allow_private),
        )
