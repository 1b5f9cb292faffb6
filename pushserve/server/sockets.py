"""Listening sockets: binding (with one-line reasons when it fails), SO_REUSEPORT, and URLs."""

from __future__ import annotations

import errno
import os
import socket

from pushserve.config import ConfigError

NO_REUSEPORT_ENV = "PUSHSERVE_NO_REUSEPORT"  # set to 1 to force the one-listener fallback
IP_PKTINFO = 8  # Linux; Python 3.11's socket module lacks the name


class PortInUse(ConfigError):
    pass


def bind(host: str, port: int, *, reuse_port: bool, listen: bool = True, backlog: int = 1024) -> socket.socket:
    """Bind a TCP socket (listening unless listen=False), or explain in one line why not."""
    return _bind(host, port, socket.SOCK_STREAM, reuse_port=reuse_port, backlog=backlog if listen else None)


def bind_udp(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    """Bind a UDP socket (for HTTP/3, in the port's SO_REUSEPORT group), or explain in one line why not."""
    return _bind(host, port, socket.SOCK_DGRAM, reuse_port=reuse_port, backlog=None)


def wildcard(sock: socket.socket) -> bool:
    """Whether a UDP socket is bound to every address: which of ours a datagram came to is then
    asked of the kernel (IP_PKTINFO), so a QUIC connection's own socket is bound to the address
    its client speaks to."""
    return bool(sock.getsockname()[0] in ("0.0.0.0", "::"))


def ask_destinations(sock: socket.socket) -> None:
    """Have the kernel tell, with each datagram, which address it was sent to (IP_PKTINFO)."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)


def _bind(host: str, port: int, kind: int, *, reuse_port: bool, backlog: int | None) -> socket.socket:
    what = "UDP port" if kind == socket.SOCK_DGRAM else "port"
    try:
        infos = socket.getaddrinfo(host, port, type=kind, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ConfigError(f"cannot listen on {host!r}: {e.strerror}") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        if backlog is not None:
            sock.listen(backlog)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise PortInUse(f"{what} {port} on {host} is already in use") from None
        if e.errno == errno.EACCES:
            raise ConfigError(f"no permission to listen on {host}:{port}" + (" (UDP)" if what != "port" else "")) \
                from None
        raise ConfigError(f"cannot listen on {host}:{port}{' (UDP)' if what != 'port' else ''}: {e.strerror}") from None
    sock.setblocking(False)
    return sock


def free_port_from(host: str, port: int, tries: int = 20) -> int:
    """``port``, or the first of the next ``tries`` ports nobody listens on (dev mode's way, as
    Vite's: a second project starts beside the first)."""
    for candidate in range(port, min(port + tries, 65536)):
        try:
            bind(host, candidate, reuse_port=False, listen=False).close()
        except PortInUse:
            continue
        return candidate
    raise PortInUse(f"ports {port} to {min(port + tries, 65536) - 1} on {host} are all in use")


def reuse_port_available() -> bool:
    if os.environ.get(NO_REUSEPORT_ENV) == "1" or not hasattr(socket, "SO_REUSEPORT"):
        return False
    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        return False
    return True


def url_for(host: str, port: int) -> str:
    shown = "localhost" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"https://{shown}:{port}/"
