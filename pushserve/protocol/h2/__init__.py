"""HTTP/2 server core (sans-IO): frames.py (frame layout), fields.py (HPACK encoding and request
field rules), hpack_decoder.py and hpack_tables.py (HPACK decoding), streams.py (stream record and
the RFC 9113 §5.1 state table), core.py (the connection)."""

from pushserve.protocol.h2.core import H2Core

__all__ = ["H2Core"]
