"""HTTP/3 over QUIC, sans-IO, around aioquic: ``H3Core`` (core.py) is one connection; packets.py
answers what comes before a connection (Retry, Version Negotiation, refusals, Stateless Resets).
quic.py and http3.py hold what pushserve changes in aioquic's own connection classes."""

from pushserve.protocol.h3.core import H3Core
from pushserve.protocol.h3.packets import ConnectionIds, RetryTokens

__all__ = ["ConnectionIds", "H3Core", "RetryTokens"]
