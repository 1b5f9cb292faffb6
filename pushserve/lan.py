"""The names a phone or another machine on the LAN would use to reach this one.

Used for two things when pushserve listens beyond loopback (``--host 0.0.0.0``, ``::`` or a LAN
address): the development certificate must name them, or the other device refuses it, and the
startup banner prints a URL it can type.

Finding the addresses sends nothing: ``connect()`` on a UDP socket only asks the kernel which
source address its route to that destination would use (a documentation address, RFC 5737 /
RFC 3849), which is the address other devices on the default network see.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import socket
from pathlib import Path

from pushserve.tls import phone_instructions

__all__ = ["banner_lines", "beyond_loopback", "lan_names", "lan_urls"]

WILDCARDS = ("0.0.0.0", "::", "")
# Any address works: connect() on a datagram socket sends no packet, it only picks a route.
_ROUTE_PROBES = ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1"))


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def beyond_loopback(host: str) -> bool:
    """True when a server bound to ``host`` can be reached from other machines."""
    if host in WILDCARDS:
        return True
    ip = _ip(host)
    if ip is not None:
        return not ip.is_loopback
    return host.lower().rstrip(".") not in ("localhost", "localhost.localdomain")


def _usable(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # Link-local IPv6 needs a zone id in URLs, which browsers do not take.
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast)


def _route_address(family: socket.AddressFamily, probe: str) -> str | None:
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((probe, 9))
        address = str(s.getsockname()[0])
        ip = _ip(address)
        return address if ip is not None and _usable(ip) else None
    return None


@functools.cache
def _machine(family: socket.AddressFamily) -> tuple[str, ...]:
    """This machine's host name(s), then its usable addresses of ``family``, route's first."""
    hostname = socket.gethostname()
    names = [hostname] if hostname else []
    if hostname and "." not in hostname:
        names.append(f"{hostname}.local")  # mDNS: how phones find a laptop on a home network
    addresses: list[str] = []
    for fam, probe in _ROUTE_PROBES:
        if fam == family and (a := _route_address(fam, probe)):
            addresses.append(a)
    with contextlib.suppress(OSError, UnicodeError):
        for *_, sockaddr in socket.getaddrinfo(hostname, None, family, socket.SOCK_STREAM):
            ip = _ip(str(sockaddr[0]))
            if ip is not None and _usable(ip):
                addresses.append(str(ip))
    return tuple(dict.fromkeys(names + addresses))


def lan_names(host: str) -> tuple[str, ...]:
    """The host names and addresses other devices may use for a server bound to ``host``;
    empty when ``host`` is loopback.  ``0.0.0.0`` covers IPv4, ``::`` IPv6 (pushserve binds
    IPv6 sockets v6-only)."""
    if not beyond_loopback(host):
        return ()
    if host in ("0.0.0.0", ""):
        return _machine(socket.AF_INET)
    if host == "::":
        return _machine(socket.AF_INET6)
    ip = _ip(host)
    return (str(ip) if ip is not None else host,)


def lan_urls(host: str, port: int) -> list[str]:
    """URLs for other devices, addresses first (they work without DNS or mDNS)."""
    names = lan_names(host)
    ordered = [n for n in names if _ip(n) is not None] + [n for n in names if _ip(n) is None]
    return [f"https://[{n}]:{port}/" if ":" in n else f"https://{n}:{port}/" for n in ordered]


def banner_lines(host: str, port: int, ca_file: Path | None) -> list[str]:
    """Startup lines for a server reachable from the LAN: its URLs there and, when it uses the
    development certificate (``ca_file`` = its CA), how to trust that CA on a phone."""
    urls = lan_urls(host, port)
    if not urls:
        return []
    lines = [f"on your network: {'  '.join(urls)}"]
    if ca_file is not None:
        lines.append(phone_instructions(ca_file))
    return lines
