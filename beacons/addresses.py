"""Where a redirect may lead: address classes, and the rule that a redirect never moves inwards.

A feed used to redirect beacons to ``http://127.0.0.1:<port>/healthz`` and to
``169.254.169.254`` (issue 10, section 4). The rule, written down in the README
under ``fetch.allow_private_redirects``:

- addresses fall in four classes, from the most public to the most private:
  public < private (RFC 1918, unique-local fc00::/7, shared 100.64/10 and every
  other non-global range) < loopback (127/8, ::1, and 0.0.0.0 and ::, which
  reach this host) < link-local (169.254/16 and fe80::/10: cloud metadata);
- a redirect may lead to an address of the same class as the source's own
  address (the first hop's) or a more public one, never a more private one,
  unless ``fetch.allow_private_redirects`` is on;
- a redirect to a link-local address is refused even then.

An IPv4 address mapped into IPv6 (``::ffff:127.0.0.1``) or NAT64
(``64:ff9b::a9fe:a9fe``) is classed by the IPv4 address it carries.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from enum import IntEnum


class AddressClass(IntEnum):
    PUBLIC = 0
    PRIVATE = 1
    LOOPBACK = 2
    LINK_LOCAL = 3

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


Classify = Callable[[str], AddressClass]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # connecting to 0.x reaches this host on Linux


def ip_literal(host: str) -> str | None:
    """``host`` when it is an IP address (brackets and an IPv6 zone allowed), else None."""
    text = host.strip("[]").partition("%")[0]
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return None
    return text


def address_class(ip: str) -> AddressClass:
    """The class of an IP address; anything that is not an IP address counts as public."""
    try:
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip.strip("[]").partition("%")[0])
    except ValueError:
        return AddressClass.PUBLIC
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        elif addr in _NAT64:
            addr = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.is_link_local:
        return AddressClass.LINK_LOCAL
    if addr.is_loopback or addr.is_unspecified or addr in _THIS_NETWORK:
        return AddressClass.LOOPBACK
    if addr.is_global:
        return AddressClass.PUBLIC
    return AddressClass.PRIVATE


def redirect_refusal(source: AddressClass, target: AddressClass, *, allow_private: bool) -> str | None:
    """Why a redirect from an address of class ``source`` to one of class ``target`` is refused; None if it is not."""
    if target is AddressClass.LINK_LOCAL:
        return "a link-local address (cloud metadata lives there) is never followed"
    if target > source and not allow_private:
        return (
            f"a redirect may not lead to a more private address than the source's own ({source.label}); "
            "set fetch.allow_private_redirects: true to allow it"
        )
    return None
