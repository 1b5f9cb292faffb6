"""Put the live-reload client into HTML in dev mode.

Injection happens where pages are rendered (SiteContent.render_page), before the static layer computes
content-length and the ETag, so both describe the bytes actually sent.  Non-HTML responses never
pass through here.
"""

from __future__ import annotations

from pushserve.dev.client import CLIENT_JS

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
