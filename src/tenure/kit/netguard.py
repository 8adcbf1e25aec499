"""Outbound destinations: refuse URLs that reach the machine's own network (SSRF).

Webhook, Slack and SMS destinations are typed by users; without this guard a URL could
make the worker call the cloud metadata service or an internal admin port. The check
resolves the host and refuses when any address is loopback, private, link-local,
reserved or multicast, unless private destinations are explicitly allowed
(TENURE_ALLOW_PRIVATE_DESTINATIONS, for single-machine set-ups and tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from tenure.kit.errors import InvalidInput


class DestinationRefused(InvalidInput):
    """The URL is not a destination Tenure will send to."""

    type_slug = "destination-refused"


def check_url_syntax(url: str, *, field: str = "url") -> tuple[str, int]:
    """(host, port) of an http(s) URL; DestinationRefused when it is anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused(f"{url!r} is not a valid URL: {exc}", field=field) from None
    if parts.scheme not in ("http", "https"):
        raise DestinationRefused(
            f"{url!r} is not an http or https URL (scheme {parts.scheme or 'missing'!r})",
            field=field,
        )
    if not parts.hostname:
        raise DestinationRefused(f"{url!r} has no host", field=field)
    if parts.username or parts.password:
        raise DestinationRefused("credentials in the URL are not allowed", field=field)
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _refusal(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        # 169.254.169.254 is the metadata service of most clouds.
        return "link-local (cloud metadata)"
    if ip.is_private:
        return "private"
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return "reserved"
    if not ip.is_global:
        # e.g. 100.64.0.0/10 (shared address space), home of Alibaba Cloud's metadata service.
        return "non-public"
    return None


def check_addresses(host: str, addresses: list[str], *, allow_private: bool, field: str) -> None:
    if allow_private:
        return
    for address in addresses:
        reason = _refusal(address)
        if reason is not None:
            raise DestinationRefused(
                f"{host} resolves to {address}, a {reason} address; set "
                "TENURE_ALLOW_PRIVATE_DESTINATIONS=true to allow private destinations",
                field=field,
            )


def _addresses(infos: list[tuple[object, ...]]) -> list[str]:
    return sorted({str(info[4][0]) for info in infos})  # type: ignore[index]


def check_destination(url: str, *, allow_private: bool, field: str = "url") -> list[str]:
    """Resolve the URL's host now and refuse a private destination; returns the addresses."""
    host, port = check_url_syntax(url, field=field)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DestinationRefused(f"{host} does not resolve: {exc}", field=field) from None
    addresses = _addresses(list(infos))
    check_addresses(host, addresses, allow_private=allow_private, field=field)
    return addresses


async def check_destination_async(
    url: str, *, allow_private: bool, field: str = "url"
) -> list[str]:
    """`check_destination` without blocking the event loop on DNS."""
    host, port = check_url_syntax(url, field=field)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DestinationRefused(f"{host} does not resolve: {exc}", field=field) from None
    addresses = _addresses(list(infos))
    check_addresses(host, addresses, allow_private=allow_private, field=field)
    return addresses
