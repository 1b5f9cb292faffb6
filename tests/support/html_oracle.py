"""The page scanner's element rules driven by html.parser instead of pushserve's own tokenizer: the
oracle the tokenizer is held to (same Found list, same marks, links and import map)."""

from __future__ import annotations

from html.parser import HTMLParser

from pushserve.scan import Found
from pushserve.scan.markup import RAW_TEXT, PageScanner


class OracleScanner(HTMLParser):
    def __init__(self, url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.scanner = PageScanner(url, links=True)
        self._skip: list[str] = []  # open <template> and raw-text elements html.parser reads as markup
        self._raw: tuple[str, dict[str, str]] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a: dict[str, str] = {}
        for name, value in attrs:
            a.setdefault(name, value or "")
        if self._skip:
            if tag == self._skip[-1] or tag == "template":
                self._skip.append(tag)
            return
        if tag == "template" or (tag in RAW_TEXT and tag not in ("script", "style")):
            self._skip.append(tag)
            if tag != "template":
                self.scanner.element(tag, a)
            return
        self.scanner.element(tag, a)
        if tag in ("script", "style"):
            self._raw, self._text = (tag, a), []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)  # "/>" means nothing on an HTML element
        if tag == "template" or (tag in RAW_TEXT and tag not in ("script", "style")):
            return
        if tag in ("script", "style"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag == self._skip[-1]:
                self._skip.pop()
            return
        if self._raw is not None and tag == self._raw[0]:
            name, a = self._raw
            self._raw = None
            self.scanner.raw_text(name, a, "".join(self._text))

    def handle_data(self, data: str) -> None:
        if self._raw is not None:
            self._text.append(data)


def oracle_scan(url: str, html: str) -> tuple[list[Found], PageScanner]:
    oracle = OracleScanner(url)
    oracle.feed(html)
    oracle.close()
    return oracle.scanner.take(), oracle.scanner
