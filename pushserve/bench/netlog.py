"""Chromium's NetLog (``--log-net-log=FILE``), read for the requests of one load.

Chromium fetches what a 103 Early Hints names in its browser process, before the page's renderer
exists; the DevTools Network events of the page show only the renderer taking those responses
from the preload cache later (``fromEarlyHints``, 0 bytes).  The NetLog is the network stack's own
record: every URL_REQUEST with when it started, when its final headers arrived, when it ended and
how many bytes it moved.  It is written to a file, so it attaches nothing to the page (the
control run keeps it).

Times in the file are the monotonic clock in ms; ``constants.timeTickOffset`` maps them onto the
epoch, which is the clock of ``performance.timeOrigin``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pushserve.bench.engine import Fetch, path_of

_STATUS = re.compile(r"^HTTP/\S+ (\d{3})")


def read(path: Path) -> dict[str, Any]:
    """The NetLog document; a file Chromium did not get to close (killed) is closed here."""
    text = path.read_text(encoding="utf-8", errors="replace").rstrip()
    try:
        doc: dict[str, Any] = json.loads(text)
        return doc
    except ValueError:
        doc = json.loads(text.rstrip(",") + "]}")
        return doc


def fetches(doc: dict[str, Any], origin: str, time_origin_ms: float) -> list[Fetch]:
    """The requests to ``origin`` (``https://host:port``), seconds after ``time_origin_ms``."""
    c = doc["constants"]
    types = {v: k for k, v in c["logEventTypes"].items()}
    phases = {v: k for k, v in c["logEventPhase"].items()}
    url_request = c["logSourceType"]["URL_REQUEST"]
    offset = float(c.get("timeTickOffset", 0))
    requests: dict[int, dict[str, Any]] = {}
    for ev in doc.get("events", []):
        src = ev.get("source", {})
        if src.get("type") != url_request:
            continue
        kind, phase = types.get(ev["type"], ""), phases.get(ev["phase"], "")
        t = (float(ev["time"]) + offset - time_origin_ms) / 1000
        params = ev.get("params", {})
        r = requests.setdefault(src["id"], {"body": 0, "filtered": 0})
        if kind == "REQUEST_ALIVE" and phase == "PHASE_BEGIN":
            r["url"], r["start"] = params.get("url", ""), t
        elif kind == "REQUEST_ALIVE" and phase == "PHASE_END":
            r["end"] = t
        elif kind == "HTTP_TRANSACTION_SEND_REQUEST":
            r["network"] = True
        elif kind == "HTTP_TRANSACTION_READ_RESPONSE_HEADERS":
            lines = [str(h) for h in params.get("headers", [])]
            r["headers_at"], r["header_bytes"] = t, sum(len(h) + 2 for h in lines) + 2
            m = _STATUS.match(lines[0]) if lines else None
            r["status"] = int(m.group(1)) if m else 0
            r["length"] = next((int(h.split(":", 1)[1]) for h in lines
                                if h.lower().startswith("content-length:") and h.split(":", 1)[1].strip().isdigit()),
                               None)
        elif kind == "HTTP2_STREAM_UPDATE_RECV_WINDOW" and int(params.get("delta", 0)) < 0:
            r["body"] -= int(params["delta"])  # DATA received on the stream
        elif kind == "URL_REQUEST_JOB_FILTERED_BYTES_READ":
            r["filtered"] += int(params.get("byte_count", 0))
    out = []
    for r in requests.values():
        url = r.get("url", "")
        if "start" not in r or not url.startswith(origin + "/"):
            continue
        body = r["body"] or (r.get("length") if r.get("length") is not None else r["filtered"])
        network = bool(r.get("network"))
        out.append(Fetch(path_of(url), r["start"], r.get("headers_at"), r.get("end"),
                         (r.get("header_bytes", 0) + body) if network else 0, int(r.get("status", 0)),
                         from_cache=not network))
    out.sort(key=lambda f: f.start)
    return out
