"""The server's TLS context, and where the development CA lives: the standard library only.

The master process imports this and nothing heavier (``cryptography`` costs it about 9 MB): it
builds the context once, before forking, from files ``certificates.check_pair`` has already
found usable (in a throwaway child), so every worker shares the session-ticket keys.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

__all__ = [
    "ALPN_PROTOCOLS",
    "CA_CERT_NAME",
    "TLS12_CIPHERS",
    "CertError",
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


def context(cert_file: Path, key_file: Path | None = None, *, password: bytes | None = None) -> ssl.SSLContext:
    """An SSLContext for the listening socket, loaded with ``cert_file`` (chain, leaf first)
    and ``key_file`` (or the key inside ``cert_file`` when ``key_file`` is None).  Check the pair
    with ``certificates.check_pair`` first: OpenSSL's own errors say little.

    Session tickets stay on (no OP_NO_TICKET): resumption saves a round trip per returning
    connection, which is what a page-load server is for.  OpenSSL keeps the ticket keys in
    memory only, random per context, so they die with the process.  Build the context before
    forking and every worker shares the keys, so a ticket works on whichever worker the kernel
    picks; OP_NO_TICKET would instead fall back to a per-process session cache that other
    SO_REUSEPORT workers cannot see.
    """
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
        raise CertError(f"OpenSSL refused {cert_file}: {exc.reason or exc}") from None
    except OSError as exc:
        raise CertError(f"cannot read {cert_file}: {exc.strerror or exc}") from None
    return ctx


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
