"""Where webhooks may go: ``https://`` to public addresses only.

Checked when a subscription is made or changed (422) and again on every delivery,
after DNS resolution, by the connection itself: :class:`GuardedTransport` resolves
the host, refuses loopback, private, link-local, metadata and other non-public
addresses, and connects to the address it checked (TLS still verifies the name),
so a name that resolves elsewhere between the check and the connection cannot
redirect a delivery inside the network. Redirects are never followed.
``PRODORDER_WEBHOOKS_ALLOW_PRIVATE=true`` lifts both rules (development, tests).

An IPv6 address that carries an IPv4 one (IPv4-compatible, -mapped and -translated,
NAT64, 6to4, Teredo) is judged by the IPv4 address it carries, since that is where a
packet sent to it ends up. Whatever the setting, a URL must not hold credentials and
its host must be a name DNS can hold (no empty label, none over 63 characters, at most
253 in all, IDNA-encodable) or an IP address: checked without DNS, as the name
``httpx`` will ask for on delivery.
"""

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

import httpcore
import httpx
import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

RESOLVE_TIMEOUT_S: Final = 5.0
BLOCKED_NAMES: Final = ("localhost", "metadata", "metadata.google.internal", "instance-data")
BLOCKED_SUFFIXES: Final = (".localhost", ".internal", ".local")
METADATA: Final = (
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
)
# IPv6 prefixes whose last 32 bits are an IPv4 address (IPv4-mapped ::ffff:0:0/96 has
# ``ipv4_mapped``, 6to4 and Teredo their own properties too).
CARRY_IPV4_LAST: Final = (
    ipaddress.ip_network("::/96"),  # IPv4-compatible, ::a.b.c.d (deprecated)
    ipaddress.ip_network("::ffff:0:0:0/96"),  # IPv4-translated, ::ffff:0:a.b.c.d (SIIT)
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64, well-known prefix
)
NOT_PUBLIC_V6: Final = (
    # Local-use NAT64 is routed inside one network only, and where the IPv4 address
    # sits depends on that network's prefix length: refused whatever it carries.
    (ipaddress.ip_network("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (ipaddress.ip_network("fec0::/10"), "a site-local address"),
)
MAX_NAME = 253
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# A last label of digits (or 0x…) makes 127.1, 2130706433 or 0x7f.1: IPv4 in another
# spelling (no top-level domain is numeric, RFC 3696 §2), which resolvers accept.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


class UnsafeAddress(Exception):
    """The webhook URL is not allowed; the message says why."""


def carried_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries: Teredo's server and client, 6to4's
    bits 16–48, the last 32 bits of the other forms; none for ``::`` and ``::1``."""
    if address.teredo is not None:
        return address.teredo
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if int(address) > 1 and any(address in prefix for prefix in CARRY_IPV4_LAST):
        return (ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF),)
    return ()


def why_not_public(address: IPAddress) -> str | None:
    """Why a connection to ``address`` could reach inside the network; None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        for prefix, refusal in NOT_PUBLIC_V6:
            if address in prefix:
                return refusal
        carried = carried_ipv4(address)
        for ipv4 in carried:
            if reason := why_not_public(ipv4):
                return f"an IPv6 form of {ipv4}, {reason}"
        if carried:  # judged by what it carries, whatever Python thinks of its prefix
            return None
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


def dns_name(host: str) -> str:
    """``host`` as DNS (and httpx, IDNA 2008) spells it; UnsafeAddress if it cannot be."""
    if not host.isascii():
        try:
            host = idna.encode(host).decode("ascii")
        except UnicodeError as exc:  # idna.IDNAError: also empty and over-long labels
            raise UnsafeAddress(f"{host!r} is not a valid host name: {exc}") from exc
    if len(host) > MAX_NAME:
        raise UnsafeAddress(f"a host name has at most {MAX_NAME} characters")
    labels = host.split(".")
    for label in labels:
        if not label:
            raise UnsafeAddress(f"{host!r} is not a valid host name: it has an empty label")
        if len(label) > 63:
            raise UnsafeAddress(f"{host!r} is not a valid host name: a label over 63 characters")
        if not _LABEL.fullmatch(label):
            raise UnsafeAddress(
                f"{host!r} is not a valid host name: letters, digits, '_' and '-' "
                "(not at either end of a label) only"
            )
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise UnsafeAddress(f"{host!r} is not a valid host name or IP address")
    return host


def check_syntax(url: str, allow_private: bool) -> tuple[str, int]:
    """Host (as DNS spells it) and port of ``url``; UnsafeAddress for what needs no DNS."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeAddress(f"not a valid URL: {exc}") from exc
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeAddress("must be an https:// URL")
    if "@" in parts.netloc:  # a secret in every log line; the signature authenticates
        raise UnsafeAddress("must not contain credentials (user:password@)")
    host = (parts.hostname or "").removesuffix(".")  # lower case already
    if not host:
        raise UnsafeAddress("must name a host")
    default = 443 if parts.scheme == "https" else 80
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal, host = None, dns_name(host)
    if allow_private:
        return host, port or default
    if host in BLOCKED_NAMES or host.endswith(BLOCKED_SUFFIXES):
        raise UnsafeAddress(f"{host} is not a public host name")
    if literal is not None and (reason := why_not_public(literal)):
        raise UnsafeAddress(f"{host} is {reason}")
    return host, port or default


async def resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S
        )
    except UnicodeError as exc:  # the idna codec's refusal; check_syntax lets none through
        raise OSError(f"not a valid host name: {exc}") from exc
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
