"""The static imports of an ES module: what the browser fetches before it runs the module.

``import … from "x"``, ``import "x"`` and ``export … from "x"`` count; dynamic ``import("x")``
runs later, on demand, and ``import.meta`` is no import.  A rough tokenizer tells code from
strings, comments, template literals and regular expressions, so that an ``import`` written
inside one of those is not taken for real.
"""

from __future__ import annotations

import re

_JS_TOKEN = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<string>"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?)
    | (?P<template>`(?:[^`\\]|\\.)*`?)
    | (?P<name>[A-Za-z_$][\w$]*)
    | (?P<number>\d[\w.]*)
    | (?P<punct>\.\.\.|[{}()\[\];,.*=<>+\-!~?:&|^%@#])
    | (?P<slash>/)
    | (?P<other>.)
    """,
    re.S | re.X,
)
# After these a "/" starts a regular expression literal, not a division.
_REGEX_AFTER_NAMES = frozenset({
    "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do",
    "else", "yield", "await",
})
_REGEX_LITERAL = re.compile(r"/(?:[^/\\\n\[]|\\.|\[(?:[^\]\\\n]|\\.)*\])+/[a-z]*")


def _js_tokens(source: str) -> list[tuple[str, str]]:
    """A rough tokenizer, just enough to tell code from strings, comments, template literals and
    regular expressions, so that an ``import`` inside any of those is not taken for real."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(source):
        match = _JS_TOKEN.match(source, pos)
        if match is None:  # cannot happen ("other" takes any char); guards the loop all the same
            break
        kind = match.lastgroup or "other"
        text = match.group()
        if kind == "slash":
            prev = tokens[-1] if tokens else ("punct", ";")
            if (prev[0] == "punct" and prev[1] not in (")", "]", "}")) or (
                    prev[0] == "name" and prev[1] in _REGEX_AFTER_NAMES):
                regex = _REGEX_LITERAL.match(source, pos)
                if regex is not None:
                    tokens.append(("regex", regex.group()))
                    pos = regex.end()
                    continue
            tokens.append(("punct", "/"))
        elif kind not in ("ws", "comment"):
            tokens.append((kind, text))
        pos = match.end()
    return tokens


_JS_ESCAPE = re.compile(r"\\(.)", re.S)


def _string_value(token: str) -> str | None:
    if len(token) < 2 or token[0] != token[-1]:
        return None  # unterminated
    # Specifiers are plain paths; an escaped character stands for itself.
    return _JS_ESCAPE.sub(lambda m: m.group(1), token[1:-1])


def module_imports(source: str) -> list[str]:
    """Specifiers of the static imports of an ES module, in order: ``import … from "x"``,
    ``import "x"``, ``export … from "x"``.  Dynamic ``import("x")`` and ``import.meta`` are not
    imports the browser fetches before running the module, so they are left out."""
    tokens = _js_tokens(source)
    found: list[str] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        prev = tokens[i - 1][1] if i else ";"
        if kind != "name" or text not in ("import", "export") or prev == ".":
            i += 1
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ("punct", ";")
        if text == "import" and nxt[0] == "string":
            value = _string_value(nxt[1])
            if value is not None:
                found.append(value)
            i += 2
            continue
        if text == "import" and nxt[1] in ("(", "."):
            i += 1  # dynamic import() or import.meta
            continue
        # Walk the clause up to `from "x"`; a statement end or a nested `import` means there is
        # no from-clause (`export const x = …;`, `export { a };`).
        j, depth = i + 1, 0
        while j < len(tokens):
            k, t = tokens[j]
            if t in ("{", "(", "["):
                depth += 1
            elif t in ("}", ")", "]"):
                depth -= 1
                if depth < 0:
                    break
            elif depth == 0 and (t == ";" or (k == "name" and t in ("import", "export", "function", "class",
                                                                         "const", "let", "var", "default"))):
                break
            elif depth == 0 and k == "name" and t == "from" and j + 1 < len(tokens) \
                    and tokens[j + 1][0] == "string":
                value = _string_value(tokens[j + 1][1])
                if value is not None:
                    found.append(value)
                j += 1
                break
            j += 1
        # A statement that ended at a keyword (no semicolon) is followed by that keyword: look
        # at it again, it may be the next import.
        ended_at_keyword = j < len(tokens) and tokens[j][0] == "name" and tokens[j][1] != "from"
        i = j if ended_at_keyword and j > i else j + 1
    return found
