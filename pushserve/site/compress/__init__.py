"""On-the-fly compression (zstd, br, gzip) and Compression Dictionary Transport (RFC 9842, dcz).

- compressor.py    what the site asks: the coding for a request, the body in it, versions kept
- bodies.py        the per-worker cache of compressed bodies (byte budget, LRU, thread results)
- dictionaries.py  previous versions of files by SHA-256, on disk, shared by the workers
- encoders.py      the codecs, whole-body and streaming

The header rules (Accept-Encoding, ETags, Vary, the dcz header, match patterns) are pure and
live in pushserve/http/codings.py.
"""

from pushserve.site.compress.compressor import WHOLE_LIMIT, Coded, Compressor

__all__ = ["WHOLE_LIMIT", "Coded", "Compressor"]
