"""HAR 1.2 files of measured loads (``--har DIR``), to open in Chromium DevTools (Network panel →
Import HAR) side by side.

- Loader rows: built from what the loader saw (its requests, responses, connection phases).
- Chromium rows: built from Chromium's own DevTools Network events (requestWillBeSent,
  responseReceived with its ``timing``, loadingFinished), the way DevTools' own export reads them;
  an entry served from an early-hints preload is placed, timed and sized by the NetLog's fetch of
  it (the bytes moved on the 103, not when the page took them from the preload cache).
- Firefox rows: built from Firefox's WebDriver BiDi network events (beforeRequestSent,
  responseStarted, responseCompleted with their fetch timings).

pushserve's fields, as HAR allows (leading underscore): ``_pushed`` (a PUSH_PROMISE delivered it),
``_earlyHint`` (requested because of a 103), ``_protocol`` (h3, h2, http/1.1) and ``_priority``
(Chromium's request priority; null for the loader, which sends no priority signal).  Timings are
ms; -1 marks a phase that did not happen (HAR 1.2)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pushserve
from pushserve.bench.engine import Fetch, early_fetches, path_of
from pushserve.bench.loader import Entry, PageLoad
from pushserve.bench.series import Series, median_run

PAGE_ID = "page_1"


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _pairs(headers: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in headers]


def protocol_name(raw: str) -> str:
    """An engine's protocol name as the bench says it: h3 (Chromium and Firefox may add a draft
    or version suffix), h2, http/1.1."""
    low = raw.lower()
    if low.startswith("h3") or low in ("http/3", "http/3.0", "quic"):
        return "h3"
    return "h2" if low in ("h2", "http/2", "http/2.0") else low


def _http_version(protocol: str) -> str:
    return {"h2": "http/2.0", "h3": "http/3.0"}.get(protocol) or (protocol.upper() if protocol else "unknown")


def _query(url: str) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)]


def _ms(x: float) -> float:
    return round(x * 1000, 3)


def loader_entry(e: Entry, load: PageLoad, origin: str) -> dict[str, Any]:
    """One HAR entry of a loader load (an entry that went over the network)."""
    requested = e.requested or 0.0
    first = e.first_byte if e.first_byte is not None else requested
    done = e.done if e.done is not None else first
    start = requested
    connect = ssl = -1.0
    blocked = 0.0
    if e.connect_start is not None and e.tls_start is not None and e.tls_done is not None:
        start = e.connect_start
        connect = _ms(e.tls_done - e.connect_start)  # HAR: connect includes ssl
        ssl = _ms(e.tls_done - e.tls_start)
        blocked = _ms(max(requested - e.tls_done, 0.0))
    timings = {"blocked": blocked, "dns": -1, "connect": connect, "ssl": ssl, "send": 0,
               "wait": _ms(max(first - requested, 0.0)), "receive": _ms(max(done - first, 0.0))}
    received = dict(e._received)
    version = _http_version(load.protocol)
    url = origin + e.path
    return {
        "pageref": PAGE_ID,
        "startedDateTime": iso(load.started + start),
        "time": round(sum(max(v, 0.0) for k, v in timings.items() if k != "ssl"), 3),
        "request": {"method": "GET", "url": url, "httpVersion": version, "cookies": [],
                    "headers": _pairs(e._sent), "queryString": _query(url), "headersSize": -1, "bodySize": 0},
        "response": {"status": e.status, "statusText": "", "httpVersion": version, "cookies": [],
                     "headers": _pairs(e._received),
                     "content": {"size": e.nbytes, "mimeType": received.get("content-type", "x-unknown")},
                     "redirectURL": received.get("location", ""), "headersSize": -1, "bodySize": e.nbytes},
        "cache": {},
        "timings": timings,
        "serverIPAddress": "127.0.0.1",
        "connection": str(e.conn),
        "_pushed": e.via == "push",
        "_earlyHint": e.early_hint,
        "_protocol": load.protocol,
        "_priority": e.priority or None,
        "_needed": e.needed,
    }


def loader_entries(load: PageLoad) -> list[dict[str, Any]]:
    parts = urlsplit(load.url)
    origin = f"{parts.scheme}://{parts.netloc}"
    # Cache hits sent no request: the HAR lists what crossed the network.
    return [loader_entry(e, load, origin) for e in load.entries if e.requested is not None and e.via != "cache"]


def _page(load: PageLoad, title: str) -> dict[str, Any]:
    dcl = load.dom_content_loaded
    timings: dict[str, Any] = {"onContentLoad": _ms(dcl) if dcl is not None else -1, "onLoad": _ms(load.page_load)}
    for key, value in (("_ttfb", load.response_start), ("_firstContentfulPaint", load.fcp),
                       ("_largestContentfulPaint", load.lcp), ("_criticalDone", load.critical_done)):
        if value is not None:
            timings[key] = _ms(value)
    if load.speed_index is not None:
        timings["_speedIndex"] = round(load.speed_index, 1)
    return {"startedDateTime": iso(load.started), "id": PAGE_ID, "title": title, "pageTimings": timings}


def har(load: PageLoad, title: str) -> dict[str, Any]:
    """The HAR document of one load: Chromium's own entries for a browser load, else the loader's."""
    entries = load._har if load._har is not None else loader_entries(load)
    return {"log": {"version": "1.2", "creator": {"name": "pushserve bench", "version": pushserve.__version__},
                    "pages": [_page(load, title)], "entries": entries}}


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def write_hars(folder: Path, all_series: Iterable[Series]) -> list[Path]:
    """``ROW-runN.har`` for every load and ``ROW-median.har`` for each row's median run."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for s in all_series:
        if not s.loads or s.variant.target == "chromium-control":  # no network events recorded: no HAR
            continue
        median = median_run(s.loads)
        named = [(f"{_slug(s.label)}-run{i + 1}.har", load, f"{s.label} run {i + 1}") for i, load in enumerate(s.loads)]
        named.append((f"{_slug(s.label)}-median.har", median, f"{s.label} median run"))
        for name, load, title in named:
            path = folder / name
            path.write_text(json.dumps(har(load, f"{title}: {load.url}"), indent=1), encoding="utf-8")
            written.append(path)
    return written


# -- Chromium: entries from DevTools Network events -----------------------------------------------


def _first_set(*values: float) -> float:
    return next((v for v in values if v >= 0), 0.0)


def devtools_entry(req: dict[str, Any]) -> dict[str, Any] | None:
    """A HAR entry from the Network events of one request (``req``: method → params), or None
    for a request that got no response."""
    sent, resp = req.get("Network.requestWillBeSent"), req.get("Network.responseReceived")
    if sent is None or resp is None:
        return None
    response = resp["response"]
    t = response.get("timing") or {}
    finished = req.get("Network.loadingFinished") or req.get("Network.loadingFailed") or {}
    issued = float(sent["timestamp"])
    start = float(t.get("requestTime", issued))
    headers_end = float(t.get("receiveHeadersEnd", 0.0))
    end = float(finished.get("timestamp", start + headers_end / 1000))

    def span(a: str, b: str) -> float:
        return round(t[b] - t[a], 3) if t.get(a, -1) >= 0 and t.get(b, -1) >= 0 else -1

    timings = {
        "blocked": round(max((start - issued) * 1000 + _first_set(t.get("dnsStart", -1), t.get("connectStart", -1),
                                                                 t.get("sendStart", -1)), 0.0), 3),
        "dns": span("dnsStart", "dnsEnd"), "connect": span("connectStart", "connectEnd"),
        "ssl": span("sslStart", "sslEnd"),
        "send": max(span("sendStart", "sendEnd"), 0.0),
        "wait": round(max(headers_end - t.get("sendEnd", 0.0), 0.0), 3),
        "receive": round(max((end - start) * 1000 - headers_end, 0.0), 3),
    }
    request = sent["request"]
    extra_req = req.get("Network.requestWillBeSentExtraInfo", {}).get("headers") or request.get("headers", {})
    extra_resp = req.get("Network.responseReceivedExtraInfo", {}).get("headers") or response.get("headers", {})
    protocol = protocol_name(str(response.get("protocol", "")))
    version = _http_version(protocol)
    transfer = int(finished.get("encodedDataLength", response.get("encodedDataLength", 0)) or 0)
    return {
        "pageref": PAGE_ID,
        "startedDateTime": iso(float(sent.get("wallTime", 0.0))),
        "time": round(sum(max(v, 0.0) for k, v in timings.items() if k != "ssl"), 3),
        "request": {"method": request.get("method", "GET"), "url": request["url"], "httpVersion": version,
                    "cookies": [], "headers": _pairs(extra_req.items()), "queryString": _query(request["url"]),
                    "headersSize": -1, "bodySize": 0},
        "response": {"status": int(response.get("status", 0)), "statusText": response.get("statusText", ""),
                     "httpVersion": version, "cookies": [], "headers": _pairs(extra_resp.items()),
                     "content": {"size": int(req.get("_decoded", 0)),
                                 "mimeType": response.get("mimeType") or "x-unknown"},
                     "redirectURL": "", "headersSize": -1, "bodySize": -1, "_transferSize": transfer,
                     **({"_error": finished["errorText"]} if "errorText" in finished else {})},
        "cache": {},
        "timings": timings,
        "serverIPAddress": str(response.get("remoteIPAddress", "")),
        "connection": str(response.get("connectionId", "")),
        "_pushed": float(t.get("pushStart", 0) or 0) > 0,
        "_earlyHint": bool(response.get("fromEarlyHints", False)),
        "_protocol": protocol,
        "_priority": req.get("_priority") or request.get("initialPriority"),
        # As DevTools' own export writes them, so its importer reads them back.
        "_initiator": {"type": (sent.get("initiator") or {}).get("type", "other")},
        "_resourceType": str(sent.get("type", "other")).lower(),
    }


def devtools_entries(events: Iterable[dict[str, Any]], page_url: str) -> list[dict[str, Any]]:
    """HAR entries of the navigation to ``page_url`` and the requests it made, from the DevTools
    events (``{"method", "params"}``) Chromium reported, in request order."""
    requests: dict[str, dict[str, Any]] = {}
    loader_id = None
    for ev in events:
        method, params = ev.get("method", ""), ev.get("params", {})
        if not method.startswith("Network.") or "requestId" not in params:
            continue
        rid = params["requestId"]
        if method == "Network.requestWillBeSent":
            if loader_id is None and params.get("type") == "Document" and params["request"]["url"] == page_url:
                loader_id = params.get("loaderId")
            if params.get("loaderId") != loader_id or loader_id is None:
                continue  # another page's request (the blank page before the navigation)
            requests.setdefault(rid, {})[method] = params
        elif method == "Network.dataReceived":
            if rid in requests:
                requests[rid]["_decoded"] = requests[rid].get("_decoded", 0) + int(params.get("dataLength", 0))
        elif method == "Network.resourceChangedPriority":
            if rid in requests:
                requests[rid]["_priority"] = params.get("newPriority")
        else:
            # ExtraInfo events may come before requestWillBeSent: keep them for every id.
            requests.setdefault(rid, {})[method] = params
    entries = [e for e in (devtools_entry(r) for r in requests.values()) if e is not None]
    entries.sort(key=lambda e: e["startedDateTime"])
    return entries


def with_network_times(entries: list[dict[str, Any]], fetches: list[Fetch], started: float) -> list[dict[str, Any]]:
    """``entries`` with each early-hints one timed and sized by the network fetch of its path
    (``started``: navigation start, epoch seconds; fetch times are relative to it)."""
    first: dict[str, Fetch] = {}
    for f in fetches:
        if f.network:
            first.setdefault(f.path, f)
    for e in entries:
        fetch = first.get(path_of(e["request"]["url"])) if e["_earlyHint"] else None
        if fetch is None or fetch.headers is None or fetch.end is None:
            continue
        e["startedDateTime"] = iso(started + fetch.start)
        e["timings"] = {"blocked": 0, "dns": -1, "connect": -1, "ssl": -1, "send": 0,
                        "wait": _ms(max(fetch.headers - fetch.start, 0.0)),
                        "receive": _ms(max(fetch.end - fetch.headers, 0.0))}
        e["time"] = round(sum(max(v, 0.0) for k, v in e["timings"].items() if k != "ssl"), 3)
        e["response"]["_transferSize"] = fetch.nbytes
    entries.sort(key=lambda e: e["startedDateTime"])
    return entries


# -- Firefox: entries from WebDriver BiDi network events ------------------------------------------


def _bidi_headers(headers: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"name": h["name"], "value": str(h.get("value", {}).get("value", ""))} for h in headers]


def bidi_requests(events: Iterable[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """BiDi network events (method, params) grouped per request, in the order they started:
    ``{"sent": params, "started": params, "done": params}``."""
    requests: dict[str, dict[str, Any]] = {}
    key = {"network.beforeRequestSent": "sent", "network.responseStarted": "started",
           "network.responseCompleted": "done", "network.fetchError": "error"}
    for method, params in events:
        if method not in key:
            continue
        rid = f"{params['request']['request']}/{params.get('redirectCount', 0)}"
        requests.setdefault(rid, {})[key[method]] = params
    return [r for r in requests.values() if "sent" in r]


def bidi_times(req: dict[str, Any]) -> dict[str, float]:
    """The request's fetch timings (epoch ms, 0 = did not happen), from its latest event."""
    latest = req.get("done") or req.get("started") or req["sent"]
    t = latest["request"].get("timings", {})
    base = float(t.get("timeOrigin", 0) or 0)
    return {k: (base + float(v)) if v else 0.0 for k, v in t.items() if k != "timeOrigin"}


def bidi_fetches(requests: list[dict[str, Any]], origin_ms: float) -> list[Fetch]:
    """What Firefox's network layer did per request (seconds after ``origin_ms``)."""
    out = []
    for req in requests:
        t = bidi_times(req)
        resp = (req.get("done") or req.get("started") or {}).get("response", {})
        cached = bool(resp.get("fromCache")) or not t.get("requestStart")

        def rel(key: str, t: dict[str, float] = t) -> float | None:
            return (t[key] - origin_ms) / 1000 if t.get(key) else None

        start = rel("requestTime") or 0.0
        out.append(Fetch(path_of(req["sent"]["request"]["url"]), start, rel("responseStart"), rel("responseEnd"),
                         0 if cached else int(resp.get("bytesReceived") or 0), int(resp.get("status") or 0),
                         from_cache=cached))
    out.sort(key=lambda f: f.start)
    return out


def bidi_entries(requests: list[dict[str, Any]], origin_ms: float, final_headers: float | None) -> list[dict[str, Any]]:
    """HAR entries of a Firefox load; ``_earlyHint``: fetched before the page's final response
    headers (``final_headers``, seconds after ``origin_ms``), which only a 103 makes happen."""
    early = early_fetches(bidi_fetches(requests, origin_ms), final_headers)
    entries: list[dict[str, Any]] = []
    navigation = min(requests, key=lambda r: bidi_times(r).get("requestTime") or 0.0, default=None)
    for req in requests:
        if "started" not in req and "done" not in req:
            continue
        t = bidi_times(req)
        if req is navigation and final_headers is not None:
            # The page's responseStart is its 103's; its wait ends with the final headers.
            t["responseStart"] = origin_ms + final_headers * 1000
        sent = req["sent"]["request"]
        resp = (req.get("done") or req["started"])["response"]

        def span(a: str, b: str, t: dict[str, float] = t) -> float:
            return round(t[b] - t[a], 3) if t.get(a) and t.get(b) and t[b] >= t[a] else -1

        start = t.get("requestTime") or t.get("fetchStart") or 0.0
        connected = span("connectStart", "connectEnd")
        timings = {
            "blocked": round(max((t.get("connectStart") or t.get("requestStart") or start) - start, 0.0), 3),
            "dns": span("dnsStart", "dnsEnd"), "connect": connected,
            "ssl": span("tlsStart", "connectEnd") if connected >= 0 else -1, "send": 0,
            "wait": max(span("requestStart", "responseStart"), 0.0),
            "receive": max(span("responseStart", "responseEnd"), 0.0),
        }
        url = sent["url"]
        protocol = protocol_name(str(resp.get("protocol", "")))
        version = _http_version(protocol)
        cached = bool(resp.get("fromCache")) or not t.get("requestStart")
        entries.append({
            "pageref": PAGE_ID,
            "startedDateTime": iso(start / 1000),
            "time": round(sum(max(v, 0.0) for k, v in timings.items() if k != "ssl"), 3),
            "request": {"method": sent.get("method", "GET"), "url": url, "httpVersion": version, "cookies": [],
                        "headers": _bidi_headers(sent.get("headers", [])), "queryString": _query(url),
                        "headersSize": int(sent.get("headersSize", -1) or -1), "bodySize": 0},
            "response": {"status": int(resp.get("status", 0)), "statusText": str(resp.get("statusText", "")),
                         "httpVersion": version, "cookies": [], "headers": _bidi_headers(resp.get("headers", [])),
                         "content": {"size": int((resp.get("content") or {}).get("size", 0) or 0),
                                     "mimeType": str(resp.get("mimeType") or "x-unknown")},
                         "redirectURL": "", "headersSize": int(resp.get("headersSize", -1) or -1), "bodySize": -1,
                         "_transferSize": 0 if cached else int(resp.get("bytesReceived") or 0)},
            "cache": {},
            "timings": timings,
            "serverIPAddress": urlsplit(url).hostname or "",
            "connection": "",
            "_pushed": False,
            "_earlyHint": not cached and path_of(url) in early and (start - origin_ms) / 1000 < (final_headers or 0.0),
            "_protocol": protocol,
            "_priority": None,
            "_initiator": {"type": str((req["sent"].get("initiator") or {}).get("type", "other"))},
            "_resourceType": str(sent.get("destination") or sent.get("initiatorType") or "other"),
        })
    entries.sort(key=lambda e: e["startedDateTime"])
    return entries
