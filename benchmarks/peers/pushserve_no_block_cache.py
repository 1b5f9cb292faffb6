"""``python -m benchmarks.peers.pushserve_no_block_cache SITE ...``: pushserve whose HTTP/2 core
decodes and checks every request's header block afresh, for ``benchmarks/browserlike.py``.

pushserve reuses the decoded request of a header block it saw before on the connection, byte for
byte (protocol/h2/fields.py's ``RequestDecoder``).  A load tool repeats its blocks endlessly; a
browser repeats few (it does not ask for what it has cached).  This launcher replaces that one
method, before the workers are forked, by the path a new block takes, so the harness can show
what the figure is without the cache.  Nothing else differs."""

from __future__ import annotations

from pushserve.cli import main
from pushserve.protocol.h2.fields import Request, RequestDecoder, validate_request


def _uncached(self: RequestDecoder, block: bytes) -> Request:
    fields, _unchanged = self.decode(block)
    return validate_request(fields)


if not hasattr(RequestDecoder, "request"):  # the core changed: say so rather than measure nothing
    raise SystemExit("pushserve_no_block_cache: RequestDecoder.request is gone; update this launcher")
RequestDecoder.request = _uncached  # type: ignore[method-assign]

raise SystemExit(main())
