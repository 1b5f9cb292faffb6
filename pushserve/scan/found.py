"""What the scanner reports: one fetch a page causes (``Found``), one navigation link (``Link``),
and the small rules both the push manifest and the bench apply to them."""

from __future__ import annotations

from dataclasses import dataclass

# What named a Found (its ``via``).
STYLESHEET = "stylesheet"  # <link rel=stylesheet>
PRELOAD = "preload"  # <link rel=preload as=…>
MODULEPRELOAD = "modulepreload"  # <link rel=modulepreload>
SCRIPT = "script"  # <script src> (classic or module)
IMG = "img"  # <img src>
IMPORT = "import"  # CSS @import
FONT = "font"  # CSS @font-face src, the source the browser takes
CSS_URL = "css-url"  # url() in a CSS declaration
MODULE_IMPORT = "module-import"  # a static import of an ES module

# Request destinations that block a page from being shown as it is meant to be.
CRITICAL_TYPES = frozenset({"style", "script", "font"})


@dataclass(frozen=True, slots=True)
class Found:
    """A fetch the page causes while it loads.  ``url`` is absolute, as the browser requests it
    (percent-encoded, no fragment).  ``type`` is the request's destination — style, script,
    font, image, fetch, document… (a preload's ``as``, "" when it has none).  ``critical``: the
    page is not shown as meant before it arrives (stylesheets for the screen and what they
    import, their fonts, scripts and the modules they import); pushserve announces those
    without being asked, and the bench times them."""

    url: str
    type: str
    via: str
    referrer: str  # the URL of the page, stylesheet or module that named it
    critical: bool = False
    module: bool = False  # an ES module script (fetched in CORS mode)
    cors: bool = False  # fetched in CORS mode: a module, a font, a crossorigin element
    credentials: bool = False  # crossorigin="use-credentials"
    integrity: str = ""
    priority: str = ""  # "high" for fetchpriority=high
    marked: bool = False  # the page asks for it: <img data-push>, <img fetchpriority=high>
    nopush: bool = False  # the element says nopush
    media: str = ""  # a stylesheet's media (or an @import's condition)
    selector: str = ""  # CSS_URL: the selector of its rule
    property: str = ""  # CSS_URL: the property ("background-image")


@dataclass(frozen=True, slots=True)
class Link:
    """A navigation link (``<a href>``, ``<area href>``): where a visitor may go next."""

    url: str
    attrs: tuple[tuple[str, str], ...]

    def attr(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.attrs if k == name), default)


def print_only(media: str) -> bool:
    """A ``media`` that screens never apply (``print``, ``only print``)."""
    queries = [q.strip().lower().removeprefix("only ").strip() for q in media.split(",")]
    return bool(media.strip()) and all(q == "print" or q.startswith("print ") for q in queries)
