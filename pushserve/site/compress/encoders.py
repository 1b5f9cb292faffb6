"""The codecs: whole-body and streaming encoders for zstd, br and gzip, and zstd with a
raw-content dictionary for dcz.  CPU only, no I/O; safe to call from any thread (every call
makes its own compressor object, since the bindings' objects are not shareable across threads).

Bindings: ``zstandard`` (raw-content dictionaries, streaming with block flushes) and Google's
``brotli`` (its Python binding, 1.2, has no shared-dictionary API, so no ``dcb``); gzip is zlib.
Each binding is imported where a body is first encoded with it, not with this module: a worker
whose clients never ask for zstd or br (or whose site has nothing to compress) never loads them
(zstandard, the ``platform`` module it imports and brotli: about 0.6 MiB per worker).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator

from pushserve.http.codings import BR, DCZ, GZIP, ZSTD, dcz_header

_GZIP_WBITS = 31  # zlib: a gzip wrapper, 32 KiB window


def encode(data: bytes, coding: bytes, level: int, dictionary: bytes | None = None,
           dictionary_hash: bytes | None = None) -> bytes:
    """``data`` in ``coding`` as one body.  dcz needs the dictionary and its SHA-256."""
    if coding == ZSTD:
        import zstandard

        return zstandard.ZstdCompressor(level=level).compress(data)
    if coding == BR:
        import brotli

        return bytes(brotli.compress(data, quality=level))
    if coding == GZIP:
        c = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)
        return c.compress(data) + c.flush()
    if coding == DCZ:
        assert dictionary is not None and dictionary_hash is not None
        import zstandard

        d = zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        cctx = zstandard.ZstdCompressor(level=level, dict_data=d, write_dict_id=False)
        return dcz_header(dictionary_hash) + cctx.compress(data)
    raise ValueError(f"no encoder for {coding!r}")


class StreamEncoder:
    """One response body compressed as it goes.  ``write`` returns what can be sent now: the
    compressor is flushed every time, so a streamed app response (server-sent chunks, a
    progress page) reaches the client piece by piece instead of waiting for a full block."""

    __slots__ = ("_finish", "_flush", "_write", "coding")

    def __init__(self, coding: bytes, level: int) -> None:
        self.coding = coding
        self._write: Callable[[bytes], bytes]
        self._flush: Callable[[], bytes]
        self._finish: Callable[[], bytes]
        if coding == ZSTD:
            import zstandard

            z = zstandard.ZstdCompressor(level=level).compressobj()
            self._write = z.compress
            self._flush = lambda: z.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
            self._finish = z.flush
        elif coding == BR:
            import brotli

            b = brotli.Compressor(quality=level)
            self._write, self._flush, self._finish = b.process, b.flush, b.finish
        elif coding == GZIP:
            g = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)
            self._write = g.compress
            self._flush = lambda: g.flush(zlib.Z_SYNC_FLUSH)
            self._finish = g.flush
        else:
            raise ValueError(f"no stream encoder for {coding!r}")

    def feed(self, data: bytes) -> bytes:
        """Compress without flushing: what the compressor has ready, maybe nothing."""
        return bytes(self._write(data))

    def write(self, data: bytes) -> bytes:
        out = self._write(data) if data else b""
        return bytes(out + self._flush())

    def finish(self, data: bytes = b"") -> bytes:
        out = self._write(data) if data else b""
        return bytes(out + self._finish())


def encode_stream(chunks: Iterable[bytes], coding: bytes, level: int) -> Iterator[bytes]:
    """A body iterator compressing another one (a file too big to hold), closing it when done
    or when the response is abandoned (generator close)."""
    enc = StreamEncoder(coding, level)
    try:
        for chunk in chunks:
            # No flush per chunk: a file has no reader waiting on each piece.
            out = enc.feed(chunk)
            if out:
                yield out
        yield enc.finish()
    finally:
        close = getattr(chunks, "close", None)
        if callable(close):
            close()
