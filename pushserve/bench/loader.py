"""A browser-like page loader, for timing one page load with a cold or a warm cache.

- HTTP/1.1: up to six connections to the origin, opened when work is waiting and every open
  connection is busy, one request at a time per connection (no pipelining, like browsers).
- HTTP/2: one connection; ``ENABLE_PUSH`` 0 (what browsers send today) or 1 (accept pushes).
  103 Early Hints ``Link: <...>; rel=preload`` make it request those URLs at once, and so do
  ``rel=preload`` Link headers on the page's final response (browsers act on both).

The HTML is scanned as it arrives; CSS files and JS modules are scanned when complete; each
discovery is requested at once (or taken from a push already promised, or from the cache).
Times are monotonic, relative to navigation start (before the first connection is opened).

A ``BrowserCache`` passed in is filled with what the load received (ETag, body, freshness) and the
cookies set; a second load with the same cache is a returning visit: fresh entries
(``Cache-Control: max-age``) are used without a request, stale or ``no-cache`` ones are
revalidated with ``If-None-Match`` (a 304 reuses the stored body), and the cookies are sent."""

from __future__ import annotations

import asyncio
import codecs
import re
import ssl
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import h2.config
import h2.connection
import h2.events
import h2.settings

from pushserve.bench.discovery import Found, HtmlScanner, is_critical, kind_of

USER_AGENT = "pushserve-bench/0.1 (browser-like loader)"
MAX_H1_CONNECTIONS = 6
# Chrome's HTTP/2 windows: streams 6 MiB, connection 15 MiB, so flow control never throttles.
H2_STREAM_WINDOW = 6 * 1024 * 1024
H2_CONN_WINDOW = 15 * 1024 * 1024
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^,;]+)*)")
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)")
# Bodies the loader reads (to discover more) and therefore keeps in the cache.
_SCANNED = ("html", "css", "js")


@dataclass
class Entry:
    """One resource of the load.  ``via``: request, push (a PUSH_PROMISE was used), hint
    (requested because of a 103 or a preload Link header) or cache (fresh in the cache, no
    request).  ``needed``: the page itself referenced it.  ``status`` 304: revalidated."""

    path: str
    kind: str
    critical: bool
    via: str = "request"
    needed: bool = False
    requested: float | None = None
    first_byte: float | None = None
    done: float | None = None
    nbytes: int = 0
    status: int = 0
    error: str = ""
    # The first request on a connection carries the connection's phases: connect started, TCP
    # handshake done (TLS started), TLS done.  ``conn`` numbers the connections of the load.
    connect_start: float | None = None
    tls_start: float | None = None
    tls_done: float | None = None
    conn: int = 0
    priority: str = ""  # the browser's priority for the request (Chromium only)
    early_hint: bool = False  # requested because a 103 named it (not a Link on the 200)
    # Encoded body as received (HTML, CSS and JS only), and what the response said about it.
    _body: list[bytes] = field(default_factory=list, repr=False)
    _encoding: str = field(default="", repr=False)
    _etag: str = field(default="", repr=False)
    _max_age: float | None = field(default=None, repr=False)
    # Request and response header fields as sent and received, for the HAR.
    _sent: list[tuple[str, str]] = field(default_factory=list, repr=False)
    _received: list[tuple[str, str]] = field(default_factory=list, repr=False)


@dataclass
class Cached:
    """What a browser keeps of a response: validator, freshness and (for scanned kinds) the body."""

    etag: str
    max_age: float | None  # None: revalidate every time (no-cache, or no max-age at all)
    stored_at: float
    body: bytes = b""  # content-encoding undone

    def fresh(self, now: float) -> bool:
        return self.max_age is not None and now - self.stored_at < self.max_age


@dataclass
class BrowserCache:
    """The HTTP cache and cookie jar of one (simulated) browser profile, for one origin."""

    entries: dict[str, Cached] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)

    def fresh(self, path: str, before: float) -> Cached | None:
        """The entry for ``path`` if it is fresh now and was stored before ``before`` (the start
        of the load asking: what this load itself received is not a cache hit)."""
        cached = self.entries.get(path)
        if cached is None or cached.stored_at >= before or not cached.fresh(time.monotonic()):
            return None
        return cached


@dataclass
class PageLoad:
    mode: str
    entries: list[Entry]
    page_load: float
    critical_done: float
    bytes: int
    requests: int
    pushes_used: int
    pushes_wasted: int
    hints_used: int
    hints_wasted: int
    protocol: str
    from_cache: int = 0  # used from the cache without a request
    not_modified: int = 0  # revalidated: 304
    first_interim: float | None = None  # the page's 103 arrived
    response_start: float | None = None  # the page's final response headers arrived
    started: float = 0.0  # navigation start, wall clock (seconds since the epoch), for the HAR
    url: str = ""
    # Browsers only: paint metrics (seconds after navigation start) and Speed Index (ms).
    fcp: float | None = None
    lcp: float | None = None
    dom_content_loaded: float | None = None  # domContentLoadedEventEnd
    speed_index: float | None = None
    # Browsers only: paths the network fetched on the 103 (before the page's final headers),
    # and the hinted paths the browser said it did not use (None: not observed).
    early_fetched: list[str] = field(default_factory=list)
    wasted: list[str] | None = None
    # ... and the ones it called unused though the page uses them (a browser's own mistake).
    said_unused: list[str] = field(default_factory=list)
    # Browsers only, left out of the JSON: screencast frames and the HAR entries built from the
    # engine's own network events.
    _frames: list[Any] = field(default_factory=list, repr=False)
    _har: list[dict[str, Any]] | None = field(default=None, repr=False)


def client_context(alpn: list[str]) -> ssl.SSLContext:
    # The bench's own throwaway certificate: nothing to verify against, and loopback only.
    # No create_default_context(): loading the system CA store costs ~50 ms, which would land
    # inside the measured load if a context were made after navigation start.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(alpn)
    return ctx


def preload_links(values: list[str]) -> list[str]:
    """URLs of ``rel=preload`` / ``rel=modulepreload`` entries in Link header values."""
    out = []
    for value in values:
        for m in _LINK.finditer(value):
            params = m.group(2).lower()
            rel = re.search(r"rel\s*=\s*\"?([^\";]+)", params)
            if rel and {"preload", "modulepreload"} & set(rel.group(1).split()):
                out.append(m.group(1).strip())
    return out


def max_age_of(cache_control: str) -> float | None:
    """Seconds the response stays fresh, or None when it must be revalidated before each use."""
    value = cache_control.lower()
    if "no-cache" in value or "no-store" in value:
        return None
    m = _MAX_AGE.search(value)
    return float(m.group(1)) if m else None


# Given a connection's local port: when the (modelled) TCP handshake completed, monotonic
# seconds; the latency proxy knows it, the client does not (loopback connects at once).
ConnectedAt = Callable[[int], float | None]


class _Loader:
    """What both protocols share: entries, discovery, cache, completion.  Subclasses send requests."""

    mode = ""
    protocol = ""

    def __init__(self, url: str, timeout: float = 60.0, cache: BrowserCache | None = None,
                 send_cookies: bool = True, connected_at: ConnectedAt | None = None) -> None:
        self.url = url
        self.connected_at = connected_at
        self.started = 0.0
        self.connections = 0
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 443
        self.authority = parts.netloc
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.timeout = timeout
        self.cache = cache
        self.send_cookies = send_cookies
        self.entries: dict[str, Entry] = {}
        # Pushes that the cache made useless (the page used its cached copy): kept for the count.
        self.superseded: list[Entry] = []
        self.t0 = 0.0
        self.scanner = HtmlScanner(url)
        self.page_path = parts.path or "/"
        self._html_decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._gunzip: Any = None
        self._finished = asyncio.Event()
        self.hinted: set[str] = set()
        self.first_interim: float | None = None
        self.response_start: float | None = None
        self._depth = 0

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def connect(self, ctx: ssl.SSLContext) -> tuple[asyncio.StreamReader, asyncio.StreamWriter,
                                                          tuple[float, float, float, int]]:
        """A TLS connection to the origin, and its phases: (start, TCP done, TLS done, number)."""
        start = self.now()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        tcp = self.now()
        port = writer.get_extra_info("sockname")[1]
        await writer.start_tls(ctx, server_hostname="localhost")
        tls = self.now()
        modelled = self.connected_at(port) if self.connected_at is not None else None
        if modelled is not None:
            tcp = min(max(modelled - self.t0, tcp), tls)
        self.connections += 1
        return reader, writer, (start, tcp, tls, self.connections)

    @staticmethod
    def opened_by(entry: Entry, phases: tuple[float, float, float, int]) -> None:
        entry.connect_start, entry.tls_start, entry.tls_done, entry.conn = phases

    def path_of(self, url: str) -> str:
        parts = urlsplit(urljoin(self.url, url))
        return parts.path + (f"?{parts.query}" if parts.query else "")

    # -- discovery ----------------------------------------------------------------------------

    def discovered(self, found: list[Found]) -> None:
        # Cache hits complete inside this loop; the load is finished only once every find
        # of this batch has an entry.
        self._depth += 1
        try:
            self._discover(found)
        finally:
            self._depth -= 1
        self._check_finished()

    def _discover(self, found: list[Found]) -> None:
        for f in found:
            path = self.path_of(f.url)
            entry = self.entries.get(path)
            if entry is not None and not entry.needed and entry.via == "push" and self._fresh(path):
                # A push of something the cache already holds fresh: the page uses its cached
                # copy and the pushed bytes were wasted.
                self.superseded.append(self.entries.pop(path))
                entry = None
            if entry is None:
                entry = self.entries[path] = Entry(path, f.kind, f.critical)
                entry.needed = True
                self.request(entry)
            elif not entry.needed:
                # Pushed or hinted before the page asked: now it is used.
                entry.needed = True
                entry.kind, entry.critical = f.kind, f.critical

    def hint(self, urls: list[str], early: bool = False) -> None:
        for url in urls:
            path = self.path_of(url)
            if path in self.entries:
                continue
            kind = kind_of(url)
            entry = self.entries[path] = Entry(path, kind, is_critical(kind), via="hint", early_hint=early)
            self.hinted.add(path)
            self.request(entry)

    def _fresh(self, path: str) -> Cached | None:
        return self.cache.fresh(path, self.t0) if self.cache is not None else None

    def request(self, entry: Entry) -> None:
        """Take ``entry`` from the cache when it is fresh there, else send a request for it."""
        if self._fresh(entry.path) is not None:
            entry.via = "cache"  # a hint or a find: either way no request goes out
            entry.requested = entry.first_byte = self.now()
            entry.status = 200
            self.on_done(entry)
            return
        self.fetch(entry)

    def request_headers(self, entry: Entry) -> list[tuple[str, str]]:
        headers = list(REQUEST_HEADERS)
        if self.cache is not None:
            if self.send_cookies and self.cache.cookies:
                headers.append(("cookie", "; ".join(f"{k}={v}" for k, v in self.cache.cookies.items())))
            cached = self.cache.entries.get(entry.path)
            if cached is not None and cached.etag:
                headers.append(("if-none-match", cached.etag))
        entry._sent = headers
        return headers

    def fetch(self, entry: Entry) -> None:
        raise NotImplementedError

    # -- response callbacks -------------------------------------------------------------------

    def on_interim(self, entry: Entry, status: int, links: list[str]) -> None:
        if status == 103 and entry.path == self.page_path:
            if self.first_interim is None:
                self.first_interim = self.now()
            self.hint(preload_links(links), early=True)

    def on_headers(self, entry: Entry, status: int, headers: list[tuple[str, str]]) -> None:
        if entry.first_byte is None:
            entry.first_byte = self.now()
        entry.status = status
        entry._received = headers
        one = {k: v for k, v in headers}
        entry._encoding = one.get("content-encoding", "").lower()
        entry._etag = one.get("etag", "")
        entry._max_age = max_age_of(one.get("cache-control", ""))
        if self.cache is not None:
            for k, v in headers:
                if k == "set-cookie" and "=" in v:
                    name, value = v.split(";", 1)[0].split("=", 1)
                    self.cache.cookies[name.strip()] = value.strip()
        if entry.path == self.page_path and entry.kind == "html":
            self.response_start = self.now()
            # A browser's preload scanner acts on Link preload headers of the page itself.
            self.hint(preload_links([v for k, v in headers if k == "link"]))

    def on_data(self, entry: Entry, data: bytes) -> None:
        if entry.first_byte is None:
            entry.first_byte = self.now()
        entry.nbytes += len(data)
        if entry.path == self.page_path and entry.kind == "html":
            self.scanner.feed(self._decode_html(entry, data))
            self.discovered(self.scanner.take())
        if entry.kind in _SCANNED:
            entry._body.append(data)

    def _decode_html(self, entry: Entry, data: bytes) -> str:
        if entry._encoding == "gzip":
            if self._gunzip is None:
                self._gunzip = zlib.decompressobj(31)
            data = self._gunzip.decompress(data)
        return self._html_decoder.decode(data)

    def _settle_body(self, entry: Entry) -> bytes | None:
        """The decoded body (from the wire, or from the cache for a 304 or a cache hit), and the
        cache updated with what this response said."""
        if entry.error:
            return None
        cached = self.cache.entries.get(entry.path) if self.cache is not None else None
        if entry.via == "cache" and cached is not None:
            return cached.body
        if entry.status == 304 and cached is not None:
            cached.stored_at = time.monotonic()
            if entry._max_age is not None:
                cached.max_age = entry._max_age
            return cached.body
        if not 200 <= entry.status < 300:
            return None
        raw = b"".join(entry._body)
        entry._body = []
        if entry._encoding == "gzip" and raw:
            raw = zlib.decompress(raw, 31)
        if self.cache is not None and (entry._etag or entry._max_age is not None):
            self.cache.entries[entry.path] = Cached(entry._etag, entry._max_age, time.monotonic(),
                                                    raw if entry.kind in _SCANNED else b"")
        return raw

    def on_done(self, entry: Entry, error: str = "") -> None:
        if entry.done is not None:
            return
        entry.done = self.now()
        entry.error = error
        body = self._settle_body(entry)
        if entry.path == self.page_path and entry.kind == "html":
            if body is not None and (entry.status == 304 or entry.via == "cache"):
                self.scanner.feed(body.decode("utf-8", "replace"))  # nothing was streamed
            self.scanner.feed(self._html_decoder.decode(b"", final=True))
            self.scanner.close()
            self.discovered(self.scanner.take())
        elif entry.kind in ("css", "js") and body is not None:
            self.discovered(self.scanner.scan_body(entry.kind, body.decode("utf-8", "replace"),
                                                   self.origin + entry.path))
        self._check_finished()

    def _check_finished(self) -> None:
        # Done when every resource (needed, pushed or hinted) has completed: pushes and hints
        # that turn out unused still cost bytes, and the next load must start on a quiet line.
        if self._depth:
            return
        every = [*self.entries.values(), *self.superseded]
        if self.entries and all(e.done is not None for e in every):
            self._finished.set()

    # -- running ------------------------------------------------------------------------------

    async def load(self) -> PageLoad:
        self.started = time.time()
        self.t0 = time.monotonic()
        page = self.entries[self.page_path] = Entry(self.page_path, "html", True, needed=True)
        page.via = "request"
        try:
            await asyncio.wait_for(self._run(page), self.timeout)
        finally:
            await self.close()
        return self.result()

    async def _run(self, page: Entry) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def result(self) -> PageLoad:
        entries = sorted([*self.entries.values(), *self.superseded],
                         key=lambda e: (e.requested or 0.0, e.path))
        needed = [e for e in entries if e.needed]
        failed = [e for e in needed if e.error or not (200 <= e.status < 300 or e.status == 304)]
        if failed:
            raise RuntimeError(f"{self.mode}: {failed[0].path} failed: {failed[0].error or failed[0].status}")
        pushed = [e for e in entries if e.via == "push"]
        hinted = [e for e in entries if e.via == "hint"]
        return PageLoad(
            mode=self.mode, entries=entries, protocol=self.protocol,
            page_load=max(e.done or 0.0 for e in needed),
            critical_done=max((e.done or 0.0 for e in needed if e.critical), default=0.0),
            bytes=sum(e.nbytes for e in entries),
            requests=sum(1 for e in entries if e.via not in ("push", "cache")),
            pushes_used=sum(1 for e in pushed if e.needed),
            pushes_wasted=sum(1 for e in pushed if not e.needed),
            hints_used=sum(1 for e in hinted if e.needed),
            hints_wasted=sum(1 for e in hinted if not e.needed),
            from_cache=sum(1 for e in entries if e.via == "cache"),
            not_modified=sum(1 for e in entries if e.status == 304),
            first_interim=self.first_interim, response_start=self.response_start,
            started=self.started, url=self.url,
        )


# gzip only: the loader must undo the coding to scan CSS/JS, and zlib is all it has.
REQUEST_HEADERS = [("user-agent", USER_AGENT), ("accept", "*/*"), ("accept-encoding", "gzip")]


class H1Loader(_Loader):
    """HTTP/1.1 over TLS, up to six keep-alive connections, one request in flight on each."""

    mode = "h1"
    protocol = "http/1.1"

    def __init__(self, url: str, timeout: float = 60.0, cache: BrowserCache | None = None,
                 send_cookies: bool = True, connected_at: ConnectedAt | None = None) -> None:
        super().__init__(url, timeout, cache, send_cookies, connected_at)
        self.queue: asyncio.Queue[Entry] = asyncio.Queue()
        self.idle = 0
        self.workers: list[asyncio.Task[None]] = []
        self.ctx = client_context(["http/1.1"])

    def fetch(self, entry: Entry) -> None:
        self.queue.put_nowait(entry)
        # A browser opens another connection only when none is free.
        if self.idle < self.queue.qsize() and len(self.workers) < MAX_H1_CONNECTIONS:
            self.workers.append(asyncio.create_task(self._worker()))

    async def _worker(self) -> None:
        reader, writer, phases = await self.connect(self.ctx)
        first = True
        try:
            while True:
                self.idle += 1
                try:
                    entry = await self.queue.get()
                finally:
                    self.idle -= 1
                entry.conn = phases[3]
                if first:
                    self.opened_by(entry, phases)
                    first = False
                try:
                    await self._exchange(reader, writer, entry)
                except (ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
                    self.on_done(entry, error=f"{type(e).__name__}: {e}")
                    return
        finally:
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        entry: Entry) -> None:
        lines = [f"GET {entry.path} HTTP/1.1", f"host: {self.authority}"]
        lines += [f"{k}: {v}" for k, v in self.request_headers(entry)]
        entry.requested = self.now()
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        while True:  # skip 1xx (browsers ignore 103 over HTTP/1.1)
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split(" ", 2)[1])
            if status >= 200:
                break
        pairs = [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in header_lines)
                 if _]
        headers = dict(pairs)
        self.on_headers(entry, status, pairs)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers expected
                    break
                self.on_data(entry, (await reader.readexactly(size + 2))[:-2])
        elif status not in (204, 304):
            left = int(headers.get("content-length", "0"))
            while left:
                data = await reader.read(min(left, 65536))
                if not data:
                    raise ConnectionError("closed mid-body")
                left -= len(data)
                self.on_data(entry, data)
        self.on_done(entry)

    async def _run(self, page: Entry) -> None:
        self.fetch(page)
        await self._finished.wait()

    async def close(self) -> None:
        for task in self.workers:
            task.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)


class H2Loader(_Loader):
    """HTTP/2 over TLS, one connection.  ``accept_push`` sets ENABLE_PUSH; 103 hints are acted
    on in either case."""

    protocol = "h2"

    def __init__(self, url: str, accept_push: bool, mode: str, timeout: float = 60.0,
                 cache: BrowserCache | None = None, send_cookies: bool = True,
                 connected_at: ConnectedAt | None = None) -> None:
        super().__init__(url, timeout, cache, send_cookies, connected_at)
        self.accept_push = accept_push
        self.mode = mode
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                         header_encoding=None))
        self.streams: dict[int, Entry] = {}
        self.writer: asyncio.StreamWriter | None = None
        self.ctx = client_context(["h2"])  # made before navigation start, like H1Loader's

    def fetch(self, entry: Entry) -> None:
        sid = self.conn.get_next_available_stream_id()
        entry.conn = 1
        headers = [(":method", "GET"), (":scheme", "https"), (":authority", self.authority),
                   (":path", entry.path), *self.request_headers(entry)]
        self.conn.send_headers(sid, headers, end_stream=True)
        entry.requested = self.now()
        self.streams[sid] = entry
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.writer is not None:
            self.writer.write(data)

    async def _run(self, page: Entry) -> None:
        reader, self.writer, phases = await self.connect(self.ctx)
        self.opened_by(page, phases)
        alpn = self.writer.get_extra_info("ssl_object").selected_alpn_protocol()
        if alpn != "h2":
            raise RuntimeError(f"server chose {alpn!r}, not h2")
        self.conn.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.ENABLE_PUSH: int(self.accept_push),
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: H2_STREAM_WINDOW,
        })
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(H2_CONN_WINDOW - 65535)
        self.fetch(page)
        reading = asyncio.create_task(self._read(reader))
        try:
            finished = asyncio.create_task(self._finished.wait())
            await asyncio.wait({reading, finished}, return_when=asyncio.FIRST_COMPLETED)
            if not finished.done():
                finished.cancel()
                reading.result()  # raises what went wrong
                raise ConnectionError("server closed the connection before the page loaded")
        finally:
            reading.cancel()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            for event in self.conn.receive_data(data):
                self._event(event)
            self._flush()

    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.InformationalResponseReceived):
            raw = [(bytes(k).decode().lower(), bytes(v).decode()) for k, v in event.headers or []]
            entry = self.streams.get(event.stream_id or 0)
            if entry is not None:
                self.on_interim(entry, int(dict(raw).get(":status", "0")), [v for k, v in raw if k == "link"])
        elif isinstance(event, h2.events.PushedStreamReceived):
            req = {bytes(k).decode(): bytes(v).decode() for k, v in event.headers or []}
            path, sid = req.get(":path", ""), event.pushed_stream_id
            if sid is None:
                return
            if path in self.entries:
                # Already requested: a browser would reset the pushed duplicate.
                self.conn.reset_stream(sid, 0x8)
                return
            kind = kind_of(path)
            entry = self.entries[path] = Entry(path, kind, is_critical(kind), via="push", conn=1)
            entry.requested = self.now()
            entry._sent = [(k, v) for k, v in req.items() if not k.startswith(":")]
            self.streams[sid] = entry
        elif isinstance(event, h2.events.ConnectionTerminated):
            raise ConnectionError(f"GOAWAY {event.error_code}")
        else:
            self._stream_event(event)

    def _stream_event(self, event: h2.events.Event) -> None:
        found = self.streams.get(getattr(event, "stream_id", None) or 0)
        if found is None:
            return
        if isinstance(event, h2.events.ResponseReceived):
            pairs = [(bytes(k).decode().lower(), bytes(v).decode()) for k, v in event.headers or []]
            self.on_headers(found, int(dict(pairs).get(":status", "0")), pairs)
        elif isinstance(event, h2.events.DataReceived):
            if event.stream_id is not None and event.flow_controlled_length is not None:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self.on_data(found, event.data or b"")
        elif isinstance(event, h2.events.StreamEnded):
            self.on_done(found)
        elif isinstance(event, h2.events.StreamReset):
            self.on_done(found, error=f"reset {event.error_code}")

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def loader_for(mode: str, url: str, timeout: float = 60.0, cache: BrowserCache | None = None,
               send_cookies: bool = True, connected_at: ConnectedAt | None = None) -> _Loader:
    """``h1``, ``h2-off`` / ``h2-hints`` (ENABLE_PUSH=0) or ``h2-push`` (ENABLE_PUSH=1).  With a
    ``cache``, the load fills it, and a later load with the same cache is a returning visit."""
    if mode == "h1":
        return H1Loader(url, timeout, cache, send_cookies, connected_at)
    return H2Loader(url, accept_push=mode == "h2-push", mode=mode, timeout=timeout, cache=cache,
                    send_cookies=send_cookies, connected_at=connected_at)


async def load_page(mode: str, url: str, timeout: float = 60.0, cache: BrowserCache | None = None,
                    send_cookies: bool = True, connected_at: ConnectedAt | None = None) -> PageLoad:
    return await loader_for(mode, url, timeout, cache, send_cookies, connected_at).load()
