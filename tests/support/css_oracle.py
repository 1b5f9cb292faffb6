"""The same references as ``pushserve.scan.css.scan_css``, read with tinycss2 (the CSS Syntax Level 3
tokenizer and parser): the oracle the lexer is held to on real stylesheets."""

from __future__ import annotations

from typing import Any

import tinycss2

from pushserve.scan.css import _BEFORE_IMPORT, _GROUPING, CssRef, _Source, font_source


def _url_of(token: Any) -> str | None:
    if token.type == "url":
        return str(token.value)
    if token.type == "function" and token.lower_name == "url":
        args = [t for t in token.arguments if t.type not in ("whitespace", "comment")]
        if args and args[0].type == "string":
            return str(args[0].value)
    return None


def _urls(tokens: list[Any]) -> list[str]:
    out: list[str] = []
    for token in tokens:
        url = _url_of(token)
        if url is not None:
            out.append(url)
        elif token.type == "function" or token.type in ("() block", "[] block", "{} block"):
            out += _urls(token.arguments if token.type == "function" else token.content)
    return out


def _sources(value: list[Any]) -> list[_Source]:
    sources = [_Source()]
    for token in value:
        if token.type == "literal" and token.value == ",":
            sources.append(_Source())
        elif _url_of(token) is not None:
            sources[-1].url = _url_of(token)
        elif token.type == "function" and token.lower_name == "local":
            sources[-1].local = True
        elif token.type == "function" and token.lower_name == "format":
            sources[-1].formats += [str(t.value).lower() for t in token.arguments if t.type in ("string", "ident")]
    return sources


def _rules(rules: list[Any], found: list[CssRef], parent: str = "", top: bool = False) -> None:
    rules_seen = False
    for rule in rules:
        if rule.type == "at-rule":
            keyword = rule.lower_at_keyword
            if keyword == "import" and top and not rules_seen:
                prelude = [t for t in rule.prelude if t.type not in ("whitespace", "comment")]
                if prelude and (prelude[0].type == "string" or _url_of(prelude[0]) is not None):
                    ref = prelude[0].value if prelude[0].type == "string" else _url_of(prelude[0])
                    rest = rule.prelude[rule.prelude.index(prelude[0]) + 1:]
                    found.append(CssRef("import", str(ref), media=tinycss2.serialize(rest).strip()))
                continue
            if not (keyword in _BEFORE_IMPORT and rule.content is None) and keyword != "import":
                rules_seen = True
            if rule.content is None:
                continue
            if keyword == "font-face":
                srcs = [d for d in tinycss2.parse_blocks_contents(rule.content, skip_comments=True,
                                                                  skip_whitespace=True)
                        if d.type == "declaration" and d.lower_name == "src"]
                url = font_source(_sources(srcs[-1].value)) if srcs else None
                if url is not None:
                    found.append(CssRef("font", url))
            elif keyword in _GROUPING:
                _rules(tinycss2.parse_blocks_contents(rule.content, skip_comments=True, skip_whitespace=True),
                       found, parent)
            else:
                _declarations(rule.content, "", found)
        elif rule.type == "qualified-rule":
            rules_seen = True
            selector = tinycss2.serialize(rule.prelude).strip()
            _declarations(rule.content, f"{parent} {selector}" if parent else selector, found)


def _declarations(content: list[Any], selector: str, found: list[CssRef]) -> None:
    items = tinycss2.parse_blocks_contents(content, skip_comments=True, skip_whitespace=True)
    for item in items:
        if item.type == "declaration":
            found += [CssRef("url", url, selector=selector, property=item.lower_name) for url in _urls(item.value)]
        elif item.type == "qualified-rule":
            _declarations(item.content, f"{selector} {tinycss2.serialize(item.prelude).strip()}", found)
        elif item.type == "at-rule" and item.content is not None:
            _rules([item], found, selector)


def scan_css_tinycss2(css: str) -> list[CssRef]:
    found: list[CssRef] = []
    _rules(tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True), found, top=True)
    return found
