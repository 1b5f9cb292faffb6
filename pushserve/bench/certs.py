"""One throwaway certificate per bench run, so every server is measured with the same key type
and size (the handshake cost is part of a connection's cost).  It is made the way pushserve
makes its development certificates, with a CA of its own that lives only in the run's folder:
Chromium pins it by SPKI, Firefox gets the CA in its profile's NSS database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pushserve.certificates import ensure_dev_cert


@dataclass(frozen=True)
class CertPair:
    cert: Path  # leaf and CA chain, PEM
    key: Path
    ca: Path | None = None  # the CA alone, PEM (browsers that trust a CA rather than pin a key)


def make_cert(folder: Path, names: tuple[str, ...] = ()) -> CertPair:
    """A localhost / 127.0.0.1 certificate (and ``names``: more host names or addresses, such as
    the packet shaper's server address) and its key, under ``folder``."""
    dev = ensure_dev_cert(folder / "certs", caroot=folder / "ca", names=names)
    return CertPair(dev.cert_file, dev.key_file, dev.ca_file)
