"""What the site asks of compression: which coding a request gets, the body in that coding
(cached, made well in a thread), and keeping each served version of a JS/CSS file as a
dictionary for the next one.  One Compressor per worker; it owns the worker's compression
threads."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from pushserve.config import Compress
from pushserve.http.codings import (
    DCZ,
    VARY_CODING,
    VARY_DICTIONARY,
    ZSTD,
    available_dictionary,
    coded_etag,
    compressible,
    dictionary_type,
    match_pattern,
    preferences,
    use_as_dictionary,
)
from pushserve.site.compress.bodies import BodyCache, DaemonExecutor
from pushserve.site.compress.dictionaries import MAX_DICTIONARY, DictionaryStore
from pushserve.site.compress.encoders import StreamEncoder, encode, encode_stream

# Bigger files are compressed as a stream at the fast level, never kept; dictionaries are never
# bigger (so a dcz body is always made whole).
WHOLE_LIMIT = MAX_DICTIONARY
_MAX_ACCEPT = 256  # distinct Accept-Encoding values whose parse is remembered
_MAX_REMEMBERED = 4096  # file versions this worker has handed to the dictionary store


@dataclass(frozen=True, slots=True)
class Coded:
    """The coding chosen for one response."""

    coding: bytes
    etag: bytes  # of the coded representation
    dictionary: bytes | None = None  # dcz: the dictionary's SHA-256 ...
    dictionary_data: bytes | None = None  # ... and its bytes


class Compressor:
    def __init__(self, settings: Compress) -> None:
        self.settings = settings
        self.offered = tuple(c.encode() for c in settings.codings)
        self.threshold = settings.threshold
        self._best = {c.encode(): level for c, level in settings.levels.items()}
        self._fast = {c.encode(): level for c, level in settings.fast_levels.items()}
        self.store = (DictionaryStore(settings.dictionary_dir)
                      if settings.dictionaries and settings.dictionary_dir is not None and self.offered else None)
        self.cache = BodyCache(settings.cache_bytes)
        self._accept: dict[bytes, tuple[bytes, ...]] = {}
        self._remembered: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self._pool: DaemonExecutor | None = None

    # -- what applies ---------------------------------------------------------------------------

    def applies(self, content_type: bytes, size: int | None) -> bool:
        """Whether a response of this type and size may be compressed (size None: unknown yet)."""
        return bool(self.offered) and compressible(content_type) and (size is None or size >= self.threshold)

    def offers_dictionary(self, content_type: bytes, size: int) -> bool:
        return (self.store is not None and dictionary_type(content_type)
                and self.threshold <= size <= MAX_DICTIONARY)

    def vary(self, content_type: bytes, size: int) -> bytes | None:
        """The Vary value for every response of such a file, or None when none is ever coded."""
        if self.offers_dictionary(content_type, size):
            return VARY_DICTIONARY
        return VARY_CODING if self.applies(content_type, size) else None

    def dictionary_header(self, url_path: str, etag: bytes) -> bytes:
        """Use-As-Dictionary for a file that offers itself; its id is the version's ETag."""
        return use_as_dictionary(match_pattern(url_path), etag.strip(b'"').decode("latin-1"))

    # -- choosing -------------------------------------------------------------------------------

    def preferences(self, accept: bytes) -> tuple[bytes, ...]:
        prefs = self._accept.get(accept)
        if prefs is None:
            if len(self._accept) >= _MAX_ACCEPT:
                self._accept.clear()
            prefs = self._accept[accept] = preferences(accept, (DCZ, *self.offered))
        return prefs

    def choose(self, accept: bytes, etag: bytes, available: bytes | None = None) -> Coded | None:
        """The coding for a response whose identity ETag is ``etag``; None for identity.  A
        dictionary named in Available-Dictionary that the store has, with dcz acceptable, wins;
        an unknown one is ignored (ordinary compression)."""
        prefs = self.preferences(accept)
        if available is not None and self.store is not None and DCZ in prefs:
            digest = available_dictionary(available)
            data = self.store.load(digest) if digest is not None else None
            if digest is not None and data is not None:
                return Coded(DCZ, coded_etag(etag, DCZ, digest), digest, data)
        for coding in prefs:
            if coding != DCZ:
                return Coded(coding, coded_etag(etag, coding))
        return None

    # -- bodies ---------------------------------------------------------------------------------

    def body(self, coded: Coded, key: str, load: Callable[[], bytes], *, keep_best: bool = True) -> bytes:
        """The body of ``key`` (a file, a rendered page) in the chosen coding.  ``load`` gives the
        identity bytes and is only called on a cache miss.  With ``keep_best`` the body is made
        at the high level in a thread; until then requests get the fast level."""
        ck = (key, coded.etag)
        hit = self.cache.get(ck)
        if hit is not None:
            return hit
        data = load()
        level_of = ZSTD if coded.coding == DCZ else coded.coding
        fast, best = self._fast[level_of], self._best[level_of]
        make = functools.partial(encode, data, coded.coding, dictionary=coded.dictionary_data,
                                 dictionary_hash=coded.dictionary)
        body = make(fast)
        final = not keep_best or best <= fast
        self.cache.put(ck, body, final=final)
        if not final:
            self.cache.submit(ck, self._executor(), functools.partial(make, best))
        return body

    def stream(self, coding: bytes, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """A large body compressed as it is read, at the fast level."""
        return encode_stream(chunks, coding, self._fast[coding])

    def stream_encoder(self, coding: bytes) -> StreamEncoder:
        return StreamEncoder(coding, self._fast[coding])

    # -- dictionaries ---------------------------------------------------------------------------

    def remember(self, key: str, etag: bytes, held: bytes | None, load: Callable[[], bytes]) -> None:
        """Keep this version of a file in the dictionary store (once per version per worker),
        so a browser holding it can be sent the next version as a delta.  A small file (held in
        memory) is written at once: another worker may be asked for a delta against it the next
        moment.  A big one is read and written in a thread."""
        if self.store is None or (key, etag) in self._remembered:
            return
        self._remembered[(key, etag)] = None
        if len(self._remembered) > _MAX_REMEMBERED:
            self._remembered.popitem(last=False)
        store = self.store
        if held is not None:
            store.save(held)
        else:
            self._executor().submit(lambda: store.save(load()))

    def _executor(self) -> DaemonExecutor:
        if self._pool is None:
            # Made on first use, so in the worker process (threads do not survive fork).
            self._pool = DaemonExecutor(2, "pushserve-compress")
        return self._pool
