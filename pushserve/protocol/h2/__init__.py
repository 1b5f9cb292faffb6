"""HTTP/2 server core (sans-IO).  core.py is the connection, composed of small objects: flow.py
(flow-control windows), budget.py (flood budgets), headerblock.py (HEADERS + CONTINUATION),
closed.py (how recently closed streams ended), settings.py (the peer's SETTINGS), scheduler.py
(bodies into DATA frames by urgency), streams.py (the stream record and the two state tables);
frames.py (frame layout), errors.py (connection and stream errors), fields.py (HPACK encoding and
request field rules), hpack_decoder.py and hpack_tables.py (HPACK decoding)."""

from pushserve.protocol.h2.core import H2Core

__all__ = ["H2Core"]
