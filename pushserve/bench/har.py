"""HAR 1.2 files of measured loads (``--har DIR``), to open in Chromium DevTools (Network panel →
Import HAR) side by side.

- Loader rows: built from what the loader saw (its requests, responses, connection phases).
- Chromium rows: built from Chromium's own DevTools Network events (requestWillBeSent,
  responseReceived with its ``timing``, loadingFinished), the way DevTools' own export reads them.

pushserve's fields, as HAR allows (leading underscore): ``_pushed`` (a PUSH_PROMISE delivered it),
``_earlyHint`` (requested because of a 103), ``_protocol`` (h2, http/1.1) and ``_priority``
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
from pushserve.bench.loader import Entry, PageLoad
from pushserve.bench.series import Series, median_run

PAGE_ID = "page_1"


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _pairs(headers: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in headers]


def _http_version(protocol: str) -> str:
    return "http/2.0" if protocol == "h2" else protocol.upper() if protocol else "unknown"


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
        if not s.loads:
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
    protocol = str(response.get("protocol", ""))
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
