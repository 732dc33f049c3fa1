"""The guard against server-side request forgery for URLs that admins type and the site then
calls (helpdesk webhooks, a brand's embedding service).

A URL is refused when it is malformed or when its host resolves to a private, loopback,
link-local, multicast or reserved address, unless private addresses were allowed for testing.
Callers check when the URL is saved and again before each request, and send the request to the
address that was checked (`pinned`), so a DNS answer that changes in between cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from community.core.i18n import gettext as _

MAX_URL_LENGTH = 500
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str  # without brackets, lower case
    port: int
    netloc: str  # host[:port] as written, for the Host header
    path: str
    query: str


class Refused(Exception):
    """The URL cannot be used; the message says why (shown to admins, logged per attempt)."""


def parse_url(url: str, *, missing: str, credentials: str) -> Target:
    """The parts of an http(s) URL. `missing` and `credentials` are what the caller's users are
    told when the URL is empty or carries a user name or password (each caller has its own
    reason why that is wrong)."""
    if not url:
        raise Refused(missing)
    if len(url) > MAX_URL_LENGTH:
        raise Refused(
            _("The URL is too long (at most %(max)d characters).") % {"max": MAX_URL_LENGTH}
        )
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise Refused(_("The URL must not contain spaces or control characters."))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(_("That is not a valid URL.")) from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused(_("Use an http:// or https:// URL."))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise Refused(credentials)
    host = (parts.hostname or "").lower()
    if not host:
        raise Refused(_("The URL needs a host name."))
    return Target(
        scheme=scheme,
        host=host,
        port=port or (443 if scheme == "https" else 80),
        netloc=parts.netloc.lower(),
        path=parts.path or "/",
        query=parts.query,
    )


def resolve(target: Target) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        # A link-local IPv6 answer may carry its interface ("fe80::1%eth0").
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    except (OSError, UnicodeError, ValueError) as exc:
        raise Refused(
            _("The host %(host)s could not be resolved.") % {"host": target.host}
        ) from exc
    if not addresses:
        raise Refused(_("The host %(host)s could not be resolved.") % {"host": target.host})
    return addresses


def is_public_address(address: IPAddress) -> bool:
    """True for a globally routable unicast address. IPv4 addresses carried inside IPv6
    (mapped ::ffff:a.b.c.d, 6to4, NAT64) are judged by the IPv4 address they carry."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        embedded = address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(embedded):
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def checked_addresses(target: Target, *, allow_private: bool) -> list[IPAddress]:
    addresses = resolve(target)
    if not allow_private:
        # Every answer must be public: a name with one public and one private address could
        # otherwise be steered to the private one.
        refused = [address for address in addresses if not is_public_address(address)]
        if refused:
            raise Refused(
                _(
                    "%(host)s points to a private, loopback or reserved address (%(address)s). "
                    "Such addresses are refused unless private addresses are allowed for testing."
                )
                % {"host": target.host, "address": str(refused[0])}
            )
    return addresses


@dataclass(frozen=True, slots=True)
class Pinned:
    """A request to the checked address: the URL names the address, while the Host header and
    the TLS server name (SNI, certificate check) keep the host name."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]


def pinned(target: Target, address: IPAddress) -> Pinned:
    host = f"[{address}]" if address.version == 6 else str(address)
    url = urlunsplit((target.scheme, f"{host}:{target.port}", target.path, target.query, ""))
    extensions: dict[str, Any] = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return Pinned(url=url, headers={"host": target.netloc}, extensions=extensions)
