"""A problem in a site file, shown with its source: the 500 page of a broken template and, in dev
mode, the overlay the live-reload client draws (both are this module's HTML, so there is one look
and one renderer).

Jinja2 reports a block left open at the end of the file ("Unexpected end of template"), or at the
tag that closed the wrong block; the line that matters is where the block began, so it is found by
lexing the source up to the reported line.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pushserve.site.template_files import TemplateError

if TYPE_CHECKING:
    import jinja2

CONTEXT_LINES = 3  # lines of source shown above and below a marked line
OVERLAY_ID = "pushserve-overlay"

# Tags that open a block closed by end<tag>; ``set`` only in its block form (no "=").
_BLOCK_TAGS = frozenset({"block", "if", "for", "macro", "call", "filter", "with", "autoescape", "trans", "set"})
_INNERMOST = re.compile(r"innermost block that needs to be closed is '(\w+)'")


@functools.cache
def _lexer() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment()


@dataclass(frozen=True, slots=True)
class Problem:
    """``file`` is site-relative; ``line`` 1-based (0: unknown); ``opened`` the line where the
    block Jinja2 could not close began (0: not that kind of error)."""

    file: str
    line: int
    message: str
    opened: int = 0
    opened_tag: str = ""

    @classmethod
    def of_template(cls, e: TemplateError, root: Path) -> Problem:
        m = _INNERMOST.search(e.message)
        if m is None or e.line <= 0:
            return cls(e.file, e.line, e.message)
        source = _read(root, e.file)
        opened = unclosed_block(source, e.line, m[1]) if source is not None else 0
        return cls(e.file, e.line, e.message, opened, m[1] if opened else "")

    def as_json(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "message": self.message,
                "opened": self.opened, "opened_tag": self.opened_tag}


def unclosed_block(source: str, upto_line: int, tag: str) -> int:
    """The line of the innermost ``{% tag %}`` still open when Jinja2 gave up at ``upto_line``
    (0 if none is found).  Tags inside comments and raw blocks are not tags: the lexer knows."""
    import jinja2  # only when a template failed: Jinja2 is loaded by then

    stack: list[tuple[str, int]] = []
    expect_name = False
    opening: tuple[str, int] | None = None  # a "set" waits for its "=" to tell its form
    try:
        for lineno, kind, value in _lexer().lex(source):
            if lineno > upto_line:
                break
            if kind == "block_begin":
                expect_name = True
                continue
            if kind == "whitespace":
                continue
            if expect_name and kind == "name":
                expect_name = False
                if value in _BLOCK_TAGS:
                    opening = (value, lineno)
                elif value.startswith("end"):
                    if not stack or stack[-1][0] != value[3:]:
                        break  # the tag Jinja2 stopped at: it closes the wrong block
                    stack.pop()
                continue
            expect_name = False
            if opening is not None:
                if opening[0] == "set" and kind == "operator" and value == "=":
                    opening = None  # {% set x = ... %}: no block
                elif kind == "block_end":
                    stack.append(opening)
                    opening = None
    except jinja2.TemplateSyntaxError:
        pass  # the lexer stopped (an unclosed comment, say): what was read so far still counts
    for name, line in reversed(stack):
        if name == tag:
            return line
    return 0


def excerpt(source: str, line: int, marked: set[int]) -> list[tuple[int, str, bool]]:
    """Lines around ``line`` as (number, text, marked)."""
    lines = source.splitlines()
    first, last = max(1, line - CONTEXT_LINES), min(len(lines), line + CONTEXT_LINES)
    return [(n, lines[n - 1], n in marked) for n in range(first, last + 1)]


def _read(root: Path, rel: str) -> str | None:
    path = root / rel
    if not path.resolve().is_relative_to(root.resolve()):
        return None
    try:
        return path.read_text("utf-8", errors="replace")
    except OSError:
        return None


# -- HTML --------------------------------------------------------------------------------------

_STYLE = (
    f"#{OVERLAY_ID}{{position:fixed;inset:0;z-index:2147483647;overflow:auto;background:#1b1b1f;color:#e8e8e8;"
    "font:14px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;padding:2.5em 3em;box-sizing:border-box;"
    "text-align:left;color-scheme:dark}"
    f"#{OVERLAY_ID} *{{box-sizing:border-box;font:inherit}}"
    f"#{OVERLAY_ID} h1{{color:#ff6b6b;font-size:18px;margin:0 0 1em;font-weight:600}}"
    f"#{OVERLAY_ID} .pushserve-problem{{margin:0 0 2em;border-top:1px solid #333;padding-top:1em}}"
    f"#{OVERLAY_ID} .file{{color:#7fb4ff}}"
    f"#{OVERLAY_ID} .message{{color:#ffb86b;white-space:pre-wrap;margin:.3em 0 .8em}}"
    f"#{OVERLAY_ID} .note{{color:#aaa;margin:.8em 0 .3em}}"
    f"#{OVERLAY_ID} pre{{background:#111114;border-radius:6px;padding:.8em 0;margin:0;overflow:auto}}"
    f"#{OVERLAY_ID} pre span{{display:block;padding:0 1em;white-space:pre}}"
    f"#{OVERLAY_ID} pre span.mark{{background:#4a1d22;color:#fff}}"
    f"#{OVERLAY_ID} pre i{{font-style:normal;color:#777;display:inline-block;min-width:3.5em}}"
    f"#{OVERLAY_ID} pre span.mark i{{color:#ff6b6b}}"
    f"#{OVERLAY_ID} .hint{{color:#888;font-size:12px}}"
)


def overlay_html(title: str, problems: list[Problem], root: Path, *, page: bool = False) -> str:
    """The overlay: each problem's file and line, its message, and the source around the line
    (and around the line where an unclosed block began)."""
    import html  # here: html.entities is ~0.3 MiB that a worker without template errors never needs

    e = html.escape
    items: list[str] = []
    for p in problems:
        where = f"{p.file}:{p.line}" if p.line else p.file
        parts = [f"<div class=pushserve-problem><div class=file>{e(where)}</div>"
                 f"<div class=message>{e(p.message)}</div>"]
        source = _read(root, p.file) if p.line else None
        if source is not None:
            marked = {p.line, p.opened} - {0}
            if p.opened:
                parts.append(f"<div class=note>the {{% {e(p.opened_tag)} %}} opened at line {p.opened} "
                             f"is never closed:</div>{_code(excerpt(source, p.opened, marked))}")
                if p.line - p.opened > 2 * CONTEXT_LINES:  # the end of the file, where Jinja2 gave up
                    parts.append(f"<div class=note>Jinja2 reached line {p.line}:</div>"
                                 f"{_code(excerpt(source, p.line, marked))}")
            else:
                parts.append(_code(excerpt(source, p.line, marked)))
        parts.append("</div>")
        items.append("".join(parts))
    attrs = " data-page=1" if page else ""
    return (f"<div id={OVERLAY_ID}{attrs} role=alert><style>{_STYLE}</style><h1>{e(title)}</h1>{''.join(items)}"
            "<div class=hint>pushserve dev mode: fix the file and save; this page reloads by itself.</div></div>")


def _code(lines: list[tuple[int, str, bool]]) -> str:
    import html

    rows = "".join(f"<span{' class=mark' if mark else ''}><i>{'>' if mark else ' '} {n}</i>{html.escape(text)}</span>"
                   for n, text, mark in lines)
    return f"<pre>{rows}</pre>"


def template_error_page(e: TemplateError, root: Path, dev: bool) -> bytes:
    """The 500 page: in dev mode the overlay itself (the live-reload client keeps it current);
    otherwise file, line and message only (no source to visitors)."""
    if dev:
        body = overlay_html("Template error", [Problem.of_template(e, root)], root, page=True)
    else:
        import html

        body = (f"<h1>500 Template error</h1><p><code>{html.escape(e.file)}</code>, line {e.line}:</p>"
                f"<pre>{html.escape(e.message)}</pre>")
    return f"<!doctype html><meta charset=utf-8><title>Template error</title><body>{body}</body>\n".encode()

