"""What a stylesheet makes the browser fetch: ``@import``ed stylesheets, the one source of each
``@font-face`` a browser takes, and the ``url()`` of each declaration (with its rule's selector and
property, so a page can ask for the background of a marked element).

A small lexer, one regular expression over the text: comments, strings, ``url()``, the few
functions that matter (``url(``, ``format(``, ``tech(``, ``local(``), at-keywords and the
punctuation that gives a stylesheet its shape ({ } ( ) ; : ,).  Everything else is skipped by
the regular expression engine, so a 70 KB stylesheet is read in a few milliseconds, where
tinycss2, the full CSS Syntax tokenizer, takes 140 ms — long enough to stall a worker's event
loop.  The tests hold this lexer to tinycss2 on the stylesheets of real sites (the fixtures, the
example site, Sphinx and MkDocs themes): the same imports, fonts and urls.

The rules a browser follows, and so do we:

- ``@import`` counts only before any other rule (``@charset`` and ``@layer`` statements aside);
  its media list is kept (``@import "p.css" print`` does not block rendering);
- in ``@font-face`` the last ``src`` declaration counts (Font Awesome 4 writes an EOT-only one
  first, for old Internet Explorer, and overrides it); in its list the browser takes the first
  source in a format it supports — WOFF2, WOFF, TrueType, OpenType — skipping ``local()``
  (fonts installed on one machine), ``embedded-opentype`` (EOT) and ``svg``, and a source without
  ``format()`` whose name ends in ``.eot`` or ``.svg``; an inline ``data:`` source needs no fetch;
- comments, strings and escapes are read as CSS reads them, so ``content: "/*"`` or
  ``url(a\\)b.png)`` mislead nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Formats a current browser loads (CSS Fonts 4 §4.3.2; "collection" is OpenType collections).
FONT_FORMATS = frozenset({"woff2", "woff", "truetype", "opentype", "collection", "woff2-variations",
                          "woff-variations", "truetype-variations", "opentype-variations"})
_NEVER_FONT_SUFFIXES = (".eot", ".svg", ".svgz")  # old Internet Explorer's and iOS 4's fonts
# At-rules whose block holds rules (a declaration's url() inside them is as good as outside).
_GROUPING = frozenset({"media", "supports", "layer", "container", "document", "-moz-document", "scope",
                       "starting-style"})
# Statements that may precede @import (CSS Cascade 5 §6.1).
_BEFORE_IMPORT = frozenset({"charset", "layer"})

# Each match skips the text that cannot matter (names, numbers, spaces) and ends on one token,
# so the engine never retries its alternatives at every character.
_TOKEN = re.compile(
    r"""
    [^/"'@{}()\[\];:,\\]*
    (?:
      (?P<comment>/\*.*?(?:\*/|\Z))
    | (?P<string>"(?:[^"\\\n]|\\.|\\\n)*(?:"|(?=\n)|\Z)|'(?:[^'\\\n]|\\.|\\\n)*(?:'|(?=\n)|\Z))
    | (?P<url>(?<=[uU][rR][lL])\(\s*(?P<bare>(?:[^"'()\\\s]|\\.)*)\s*\))
    | (?P<at>@-?(?:[A-Za-z_]|\\.|[^\x00-\x7f])(?:[\w-]|\\.|[^\x00-\x7f])*)
    | (?P<punct>[{}()\[\];:,])
    | \\.|[/@]
    )
    """,
    re.S | re.X,
)
# A rule's body that can hold no url(): no string, comment, escape, nested block, or "url(";
# skipped in one match (most rules of a stylesheet are such).
_PLAIN_BODY = re.compile(r"""(?:[^{}"'/\\uU]|/(?!\*)|[uU](?![rR][lL]\())*\}""")
# The function a "(" opens, when it is one that matters here.
_FUNCTION = re.compile(r"(?<![\w\\-])(url|format|tech|local)\Z", re.I)
_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\n\r\f]?|(\n)|(.))", re.S)
_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.S)


_CONDITION = re.compile(r"^\s*(?:layer(?:\([^)]*\))?|supports\((?:[^()]|\([^()]*\))*\))\s*", re.I)


def media_of(condition: str) -> str:
    """The media list of an ``@import`` condition, its ``layer(…)`` and ``supports(…)`` dropped."""
    while True:
        rest = _CONDITION.sub("", condition, count=1)
        if rest == condition:
            return condition.strip()
        condition = rest


def unescape(text: str) -> str:
    """CSS escapes resolved: ``\\41`` → ``A``, ``\\)`` → ``)``, an escaped newline dropped."""
    if "\\" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        if m.group(1):
            code = int(m.group(1), 16)
            return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"
        return "" if m.group(2) else m.group(3)
    return _ESCAPE.sub(one, text)


def _string_value(token: str) -> str:
    quote = token[0]
    body = token[1:-1] if len(token) > 1 and token.endswith(quote) else token[1:]
    return unescape(body)


@dataclass(frozen=True, slots=True)
class CssRef:
    """One fetch a stylesheet causes, the reference as written (unresolved)."""

    kind: str  # "import", "font" or "url"
    ref: str
    media: str = ""  # an @import's condition (media list, layer(), supports()) as written
    selector: str = ""  # "url": the selector of the rule holding the declaration ("" outside rules)
    property: str = ""  # "url": the declaration's property, lower case ("background-image")


@dataclass(slots=True)
class _Source:
    url: str | None = None
    local: bool = False
    formats: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Block:
    kind: str  # "rule", "group", "font-face", "other"
    prelude: tuple[int, int] = (0, 0)  # where its selector is written
    parent: _Block | None = None


def font_source(sources: list[_Source]) -> str | None:
    """The source a browser fetches from one ``src`` list: the first it can load, or None."""
    for source in sources:
        if source.url is None:
            continue  # local(): a font of the visitor's machine, if any
        if source.formats:
            if not any(f in FONT_FORMATS for f in source.formats):
                continue
        elif source.url.split("?", 1)[0].split("#", 1)[0].lower().endswith(_NEVER_FONT_SUFFIXES):
            continue
        return None if source.url.lower().startswith("data:") else source.url
    return None


def scan_css(css: str) -> list[CssRef]:
    """The references of a stylesheet, in order: imports, fonts and declaration url()s."""
    return _Scan(css).run()


class _Scan:
    """One pass over the tokens, keeping the shape: open blocks, open parentheses, and where the
    current statement (rule prelude, at-rule or declaration) began.  Selectors and property
    names are read only for a url() found; most declarations cost a ":" and a ";"."""

    def __init__(self, css: str) -> None:
        self.css = css
        self.found: list[CssRef] = []
        self.block: _Block | None = None  # the innermost open { } block
        self.parens: list[tuple[str, int]] = []  # ("url"/"format"/…/"(", where its content starts)
        self.start = 0  # where the current statement began
        self.colon = -1  # where its ":" is (a declaration), or -1
        self.at = ""  # its at-keyword, lower case, without "@"
        self.rules_seen = False  # a rule came: a later @import is ignored
        self.import_ref: str | None = None
        self.import_end = 0
        self.sources: list[_Source] | None = None  # @font-face: the src list being read …
        self.last_src: list[_Source] | None = None  # … and the last complete one

    def run(self) -> list[CssRef]:
        css = self.css
        pos, size = 0, len(css)
        while pos < size:
            m = _TOKEN.match(css, pos)
            if m is None or m.end() == pos:
                break
            pos = m.end()
            kind = m.lastgroup
            if kind == "punct":
                ch = m.group(kind)
                if self.parens:
                    if ch == "(" or ch == "[":
                        self._open_paren(ch, m.start(kind), m.end())
                    elif ch == ")" or ch == "]":
                        self._close_paren(m.start(kind), m.end())
                    elif ch == "{" or ch == "}":  # unbalanced ( ): the block wins, as in CSS
                        self.parens.clear()
                        self._brace(ch, m.start(kind), m.end())
                elif ch == ":":
                    if self.colon < 0 and not self.at and self.block is not None:
                        self.colon = m.start(kind)
                        if self.block.kind == "font-face" and self._property() == "src":
                            self.sources = [_Source()]
                elif ch == ";":
                    self._semicolon(m.start(kind), m.end())
                elif ch == "{" or ch == "}":
                    self._brace(ch, m.start(kind), m.end())
                    if ch == "{" and self.block is not None and self.block.kind == "rule":
                        plain = _PLAIN_BODY.match(css, pos)
                        if plain is not None:  # nothing in it is fetched
                            pos = plain.end()
                            self._brace("}", pos - 1, pos)
                elif ch == "(" or ch == "[":
                    self._open_paren(ch, m.start(kind), m.end())
                elif ch == "," and self.sources is not None:
                    self.sources.append(_Source())
            elif kind == "string":
                if self.parens and self.parens[-1][0] == "url":
                    self._url(_string_value(m.group(kind)), m.end())
                elif self.at == "import" and not self.parens and self.import_ref is None:
                    self.import_ref, self.import_end = _string_value(m.group(kind)), m.end()
            elif kind == "url":
                if _FUNCTION.search(css, max(0, m.start(kind) - 7), m.start(kind)):
                    self._url(unescape(m.group("bare")), m.end())  # (else some "…url(" function)
            elif kind == "at" and not self.at and not self.parens and not self._text(self.start, m.start(kind)):
                self.at = unescape(m.group(kind)[1:]).lower()
        return self.found

    def _text(self, start: int, end: int) -> str:
        text = self.css[start:end]
        return (_COMMENT.sub("", text) if "/*" in text else text).strip()

    def _property(self) -> str:
        return unescape(self._text(self.start, self.colon)).lower()

    def _selector(self, block: _Block) -> str:
        own = self._text(*block.prelude)
        if block.parent is not None and block.parent.kind == "rule":
            return f"{self._selector(block.parent)} {own}"  # CSS nesting: within its parent's rule
        return own

    def _open_paren(self, ch: str, start: int, end: int) -> None:
        name = ch
        if ch == "(":
            func = _FUNCTION.search(self.css, max(0, start - 7), start)
            if func is not None:
                name = func.group(1).lower()
                if name == "local" and self.sources is not None:
                    self.sources[-1].local = True
        self.parens.append((name, end))

    def _close_paren(self, start: int, end: int) -> None:
        name, begun = self.parens.pop()
        if name == "format" and self.sources is not None:
            words = self._text(begun, start).split(",")
            self.sources[-1].formats += [unescape(w.strip().strip("\"'")).lower() for w in words]
        elif name == "url" and self.at == "import" and self.import_end < end:
            self.import_end = end  # url("x.css") ends at its ")"

    def _url(self, url: str, end: int) -> None:
        if self.at == "import":
            if self.import_ref is None and self.block is None:
                self.import_ref, self.import_end = url, end
            return
        block = self.block
        if self.at or block is None or self.colon < 0:
            return  # @namespace url(…), a selector: nothing is fetched
        if block.kind == "font-face":
            if self.sources is not None:
                self.sources[-1].url = url
        elif block.kind != "group":
            selector = self._selector(block) if block.kind == "rule" else ""
            self.found.append(CssRef("url", url, selector=selector, property=self._property()))

    def _brace(self, ch: str, start: int, end: int) -> None:
        self._end_declaration()
        parent = self.block
        if ch == "{":
            if self.at:
                kind = "font-face" if self.at == "font-face" else "group" if self.at in _GROUPING else "other"
            else:
                kind = "rule" if parent is None or parent.kind in ("group", "rule") else "other"
            self.block = _Block(kind, (self.start, start), parent)
            self.rules_seen = True
        elif parent is not None:
            if parent.kind == "font-face":
                url = font_source(self.last_src or [])
                if url is not None:
                    self.found.append(CssRef("font", url))
                self.last_src = None
            self.block = parent.parent
        self._next(end)

    def _semicolon(self, start: int, end: int) -> None:
        if self.at == "import" and self.block is None:
            if self.import_ref is not None and not self.rules_seen:
                self.found.append(CssRef("import", self.import_ref, media=self._text(self.import_end, start)))
        elif self.at and self.at not in _BEFORE_IMPORT:
            self.rules_seen = True
        self._end_declaration()
        self._next(end)

    def _end_declaration(self) -> None:
        if self.sources is not None:
            self.last_src, self.sources = self.sources, None

    def _next(self, pos: int) -> None:
        self.start = pos
        self.colon = -1
        if self.at:
            self.at = ""
            self.import_ref = None
        if self.parens:
            self.parens.clear()
