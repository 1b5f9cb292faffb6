"""Put the live-reload client into HTML in dev mode.

Injection happens where pages are rendered (Site.render_page), before the static layer computes
content-length and the ETag, so both describe the bytes actually sent.  Non-HTML responses never
pass through here.
"""

from __future__ import annotations

from pushserve.dev.client import CLIENT_JS
from pushserve.http.response import Response

SNIPPET = b"<script data-pushserve-dev>" + CLIENT_JS.encode() + b"</script>\n"
assert b"</script" not in CLIENT_JS.encode().lower()  # would end the inline script early


def inject(html: bytes, snippet: bytes = SNIPPET) -> bytes:
    """``snippet`` before the last ``</body>``, else before the last ``</html>``, else at the end
    (tags matched case-insensitively; the last one, since an earlier one may sit in a comment or
    a string)."""
    lower = html.lower()
    for tag in (b"</body", b"</html"):
        at = lower.rfind(tag)
        if at >= 0:
            return html[:at] + snippet + html[at:]
    return html + snippet


def inject_response(response: Response) -> Response:
    """The same response with the client in its HTML body (for pages built outside the render
    path, such as the template error page); anything else is returned unchanged."""
    body = response.body
    ctype = next((v for k, v in response.headers if k == b"content-type"), b"")
    if not isinstance(body, bytes) or not ctype.startswith(b"text/html"):
        return response
    body = inject(body)
    headers = [(k, str(len(body)).encode() if k == b"content-length" else v) for k, v in response.headers]
    return Response(response.status, headers, body, source=response.source, note=response.note)
