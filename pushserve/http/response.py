"""The response a site handler gives back, before a protocol core puts it on the wire."""

from __future__ import annotations

from dataclasses import dataclass, field

from pushserve.protocol.events import Body, Headers


@dataclass(slots=True)
class Response:
    status: int
    headers: Headers = field(default_factory=list)
    body: Body | None = None  # None: no body (HEAD, 304, 204)
    # Site-relative path of the file behind the response ("index.html", "css/site.css"), when
    # there is one: the push policy looks pages up in the manifest by it.
    source: str | None = None
    # A short note for the access log ("template error", "traversal"), when the status alone
    # would not say enough.
    note: str = ""


def plain_response(status: int, text: bytes, *, note: str = "", head: bool = False,
                   extra: Headers | None = None) -> Response:
    """A short text/plain answer (errors, refusals); never cached, so a transient 404 or 413
    does not stick."""
    headers: Headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(text)),
                        (b"cache-control", b"no-cache"), *(extra or [])]
    return Response(status, headers, None if head else text, note=note)
