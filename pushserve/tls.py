"""The server's TLS context, and where the development CA lives: the standard library only.

The master process imports this for ``CertError`` and the CA's place, and loads nothing of TLS:
``ssl`` is imported when a context is built, in each worker after the fork, from the bytes of
files that ``certificates.check_pair`` (``cryptography``) found usable in a throwaway child
(``Snapshot``).  That keeps the master at what supervising needs (``ssl`` weighs about 4 MB,
``cryptography`` about 9 MB).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

__all__ = [
    "ALPN_PROTOCOLS",
    "CA_CERT_NAME",
    "TLS12_CIPHERS",
    "CertError",
    "Snapshot",
    "context",
    "default_ca_file",
    "default_caroot",
    "phone_instructions",
]

ALPN_PROTOCOLS = ("h2", "http/1.1")

# TLS 1.2 suites: ephemeral ECDH and AEAD only.  RFC 9113 §9.2.2 blocklists every non-AEAD or
# non-ephemeral suite (a client may answer one with INADEQUATE_SECURITY) and §9.2.2 requires
# TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, which "ECDHE+AESGCM" includes.  DHE is left out: slow,
# and no browser offers it any more.  TLS 1.3 suites are AEAD by construction and unaffected.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"

CA_CERT_NAME = "rootCA.pem"


class CertError(Exception):
    """A certificate or key problem the user can fix.  ``str()`` is one line for the CLI."""


def context(cert_file: Path, key_file: Path | None = None, *, password: bytes | None = None,
            shown: Path | None = None) -> ssl.SSLContext:
    """An SSLContext for the listening socket, loaded with ``cert_file`` (chain, leaf first)
    and ``key_file`` (or the key inside ``cert_file`` when ``key_file`` is None).  Check the pair
    with ``certificates.check_pair`` first: OpenSSL's own errors say little.  ``shown`` names
    the certificate in errors when ``cert_file`` is not the user's path.

    Session tickets stay on (no OP_NO_TICKET): resumption saves a returning connection the
    certificate and its signature (and, over TLS 1.2, a round trip).  OpenSSL keeps the ticket
    keys in memory only, random per context, so they die with the process.  Each worker builds
    its own context, as Hypercorn's and Uvicorn's do, so with several workers a ticket is taken
    only by the worker that issued it; elsewhere the client gets a full handshake (over TLS 1.3
    the same round trips).  nginx shares its keys between workers; Python's ssl cannot set them.
    """
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # RFC 9113 §9.2.1: HTTP/2 over TLS 1.2 must run without compression and renegotiation.
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.set_alpn_protocols(list(ALPN_PROTOCOLS))
    try:
        # The callable stops OpenSSL from ever prompting on a terminal for a key's password.
        ctx.load_cert_chain(str(cert_file), str(key_file) if key_file is not None else None,
                            password=(lambda: password or b""))
    except ssl.SSLError as exc:
        raise CertError(f"OpenSSL refused {shown or cert_file}: {exc.reason or exc}") from None
    except OSError as exc:
        raise CertError(f"cannot read {shown or cert_file}: {exc.strerror or exc}") from None
    return ctx


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A certificate pair as it was when checked, in memory files (memfd) the workers inherit:
    a worker forked later (a crashed one's replacement) serves what was checked, whatever has
    happened to the files on disk since; a SIGHUP checks them again and takes a new snapshot."""

    cert: Path  # the user's paths, for messages
    key: Path | None
    cert_fd: int
    key_fd: int | None

    @classmethod
    def take(cls, cert: Path, key: Path | None) -> Snapshot:
        cert_fd = _memory_copy(cert, "certificate file")
        try:
            key_fd = _memory_copy(key, "key file") if key is not None else None
        except CertError:
            os.close(cert_fd)
            raise
        return cls(cert, key, cert_fd, key_fd)

    def paths(self) -> tuple[Path, Path | None]:
        """The memory files, as paths this process and its forked children can open."""
        return (Path(f"/proc/self/fd/{self.cert_fd}"),
                Path(f"/proc/self/fd/{self.key_fd}") if self.key_fd is not None else None)

    def named(self, message: str) -> str:
        """``message`` (about the memory files) with the user's paths in their place."""
        names = {str(path): str(shown) for path, shown in zip(self.paths(), (self.cert, self.key), strict=True)
                 if path is not None}
        # (?!\d): /proc/self/fd/3 is not the start of /proc/self/fd/31
        return re.sub("|".join(rf"{re.escape(p)}(?!\d)" for p in names), lambda m: names[m.group(0)], message)

    def context(self) -> ssl.SSLContext:
        cert, key = self.paths()
        return context(cert, key, shown=self.cert)

    def close(self) -> None:
        for fd in (self.cert_fd, self.key_fd):
            if fd is not None:
                os.close(fd)


def _memory_copy(path: Path, what: str) -> int:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CertError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    fd = os.memfd_create(f"pushserve-{Path(path).name}")  # close-on-exec; private to our processes
    os.write(fd, data)  # a few KB: one write
    return fd


def default_caroot() -> Path:
    """Where the development CA lives: $PUSHSERVE_CAROOT, else $XDG_DATA_HOME/pushserve,
    else ~/.local/share/pushserve."""
    if env := os.environ.get("PUSHSERVE_CAROOT"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME", "")
    # The XDG spec says to ignore a relative value.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "pushserve"


def default_ca_file() -> Path:
    """The development CA certificate in ``default_caroot()``."""
    return default_caroot() / CA_CERT_NAME


def phone_instructions(ca_file: Path) -> str:
    """One line: how to make a phone (or another machine) trust the development CA."""
    return (f"to trust it on a phone, copy {ca_file} to it and install it as a CA certificate "
            "(Android: Settings > Security > Encryption & credentials > Install a certificate > "
            "CA certificate; iOS: open it, install the profile, then turn it on in Settings > "
            "General > About > Certificate Trust Settings)")
