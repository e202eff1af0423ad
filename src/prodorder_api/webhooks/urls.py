"""Where webhooks may go: ``https://`` to public addresses only.

Checked when a subscription is made or changed (422) and again on every delivery,
after DNS resolution, by the connection itself: :class:`GuardedTransport` resolves
the host, refuses loopback, private, link-local, metadata and other non-public
addresses, and connects to the address it checked (TLS still verifies the name),
so a name that resolves elsewhere between the check and the connection cannot
redirect a delivery inside the network. Redirects are never followed.
``PRODORDER_WEBHOOKS_ALLOW_PRIVATE=true`` lifts both rules (development, tests).
"""

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

RESOLVE_TIMEOUT_S: Final = 5.0
BLOCKED_NAMES: Final = ("localhost", "metadata", "metadata.google.internal", "instance-data")
BLOCKED_SUFFIXES: Final = (".localhost", ".internal", ".local")
METADATA: Final = (
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
)


class UnsafeAddress(Exception):
    """The webhook URL is not allowed; the message says why."""


def why_not_public(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        return "a cloud metadata address"
    for reason, flag in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
    ):
        if flag:
            return f"a {reason} address"
    if not address.is_global:
        return "not a public address"
    return None


def check_addresses(host: str, addresses: Iterable[IPAddress]) -> None:
    for address in addresses:
        reason = why_not_public(address)
        if reason:
            raise UnsafeAddress(f"{host} resolves to {address}, {reason}")


def check_syntax(url: str, allow_private: bool) -> tuple[str, int]:
    """Scheme, host and port of ``url``; raises UnsafeAddress for what needs no DNS."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeAddress(f"not a valid URL: {exc}") from exc
    host = (parts.hostname or "").rstrip(".").lower()
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeAddress("must be an https:// URL")
    if not host:
        raise UnsafeAddress("must name a host")
    default = 443 if parts.scheme == "https" else 80
    if allow_private:
        return host, port or default
    if host in BLOCKED_NAMES or host.endswith(BLOCKED_SUFFIXES):
        raise UnsafeAddress(f"{host} is not a public host name")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return host, port or default
    check_addresses(host, [literal])
    return host, port or default


async def resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S
    )
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def check_url(url: str, allow_private: bool) -> None:
    """The subscribe-time check. A name that does not resolve (yet) is let through:
    every delivery checks again, and one that never resolves simply fails."""
    host, port = check_syntax(url, allow_private)
    if allow_private:
        return
    try:
        addresses = await resolve(host, port)
    except (OSError, TimeoutError):
        return
    check_addresses(host, addresses)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if not self._allow_private:
            try:
                addresses = await resolve(host, port)
            except (OSError, TimeoutError) as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
            check_addresses(host, addresses)
            host = str(addresses[0])
        return await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, connecting only to addresses the rules allow (no proxy)."""

    def __init__(self, allow_private: bool) -> None:
        super().__init__(trust_env=False)
        # httpx builds its pool without a way to pass a network backend; this is the
        # same pool with ours (httpx ≥ 0.27 keeps the pool in ``_pool``).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(allow_private),
        )
