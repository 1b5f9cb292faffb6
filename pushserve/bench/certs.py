"""One throwaway certificate per bench run, so every server is measured with the same key type
and size (the handshake cost is part of a connection's cost).  It is made the way pushserve
makes its development certificates, with a CA of its own that lives only in the run's folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pushserve.certificates import ensure_dev_cert


@dataclass(frozen=True)
class CertPair:
    cert: Path  # leaf and CA chain, PEM
    key: Path


def make_cert(folder: Path) -> CertPair:
    """A localhost / 127.0.0.1 certificate and its key, under ``folder``."""
    dev = ensure_dev_cert(folder / "certs", caroot=folder / "ca")
    return CertPair(dev.cert_file, dev.key_file)
