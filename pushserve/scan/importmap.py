"""Import maps (``<script type="importmap">``): how a module specifier becomes a URL.

The HTML standard's resolution, in short: a specifier that looks like a URL (``/x``, ``./x``,
``../x``, ``https://…``) is one, unless the map remaps it; a bare specifier (``three``) means
something only through the map — an exact key, or the longest key ending in ``/`` that prefixes
it — with the scopes matching the importing module's URL tried first.  An unmapped bare
specifier fails to resolve (the browser throws), so it names nothing to fetch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pushserve.scan.urls import resolve

Specifiers = dict[str, str | None]  # normalized key -> URL (None: a key the map blocks)


def _url_like(specifier: str, base: str) -> str | None:
    if specifier.startswith(("/", "./", "../")):
        return resolve(specifier, base)
    if urlsplit(specifier).scheme in ("http", "https"):
        return resolve(specifier, base)
    return None


def _specifier_map(data: object, base: str) -> Specifiers:
    out: Specifiers = {}
    if not isinstance(data, dict):
        return out
    for key, value in data.items():
        if not isinstance(key, str) or not key:
            continue
        normalized = _url_like(key, base) or key
        address = resolve(value, base) if isinstance(value, str) else None
        if address is not None and normalized.endswith("/") and not address.endswith("/"):
            address = None  # a prefix must map to a prefix
        out[normalized] = address
    # Longest keys first: the most specific match wins.
    return dict(sorted(out.items(), key=lambda kv: kv[0], reverse=True))


@dataclass(slots=True)
class ImportMap:
    imports: Specifiers = field(default_factory=dict)
    scopes: dict[str, Specifiers] = field(default_factory=dict)
    key: tuple[str, ...] = ()  # what was added (base URL and JSON of each map): equal keys, equal maps

    def add(self, text: str, base: str) -> bool:
        """Merge one ``<script type=importmap>``'s JSON (found in the document at ``base``); an
        entry already present wins, as browsers merge several maps.  False for unreadable JSON."""
        try:
            data = json.loads(text)
        except ValueError:
            return False
        if not isinstance(data, dict):
            return False
        self.key += (base, text)
        for key, value in _specifier_map(data.get("imports"), base).items():
            self.imports.setdefault(key, value)
        scopes = data.get("scopes")
        if isinstance(scopes, dict):
            for prefix, specifiers in scopes.items():
                scope = resolve(prefix, base) if isinstance(prefix, str) else None
                if scope is not None:
                    target = self.scopes.setdefault(scope, {})
                    for key, value in _specifier_map(specifiers, base).items():
                        target.setdefault(key, value)
        self.scopes = dict(sorted(self.scopes.items(), key=lambda kv: kv[0], reverse=True))
        return True

    def resolve(self, specifier: str, referrer: str) -> str | None:
        """The URL a module at ``referrer`` imports with ``specifier``, or None (unresolvable)."""
        as_url = _url_like(specifier, referrer)
        normalized = as_url or specifier
        for scope, specifiers in self.scopes.items():
            if scope == referrer or (scope.endswith("/") and referrer.startswith(scope)):
                matched, url = _match(normalized, specifiers)
                if matched:
                    return url
        matched, url = _match(normalized, self.imports)
        return url if matched else as_url


def _match(normalized: str, specifiers: Specifiers) -> tuple[bool, str | None]:
    """(whether a key matches, the URL it maps to — None when the map blocks the specifier)."""
    for key, address in specifiers.items():
        if key == normalized:
            return True, address
        if key.endswith("/") and normalized.startswith(key):
            mapped = resolve(normalized[len(key):], address) if address is not None else None
            return True, mapped if mapped is not None and address and mapped.startswith(address) else None
    return False, None


def resolve_specifier(specifier: str, referrer: str, import_map: ImportMap | None) -> str | None:
    """A module specifier as the browser resolves it: through the page's import map if it has
    one; a bare specifier without a map names nothing."""
    if import_map is not None:
        return import_map.resolve(specifier, referrer)
    return _url_like(specifier, referrer)
