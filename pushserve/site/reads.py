"""What push manifest inference reads of a site, remembered across pages: whether a URL path is a
file of the site (for a second), and what a stylesheet or module names, for as long as the file's
size and modification time stay the same — 500 pages of one theme load the same stylesheets, and
each is read and scanned once."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from pushserve.scan import Found, ImportMap, scan_module, scan_stylesheet
from pushserve.scan.urls import site_url
from pushserve.site.paths import SitePaths

_Stamp = tuple[str, int, int]


class SiteReads:
    _MAX_ENTRIES = 1024

    def __init__(self, site: SitePaths, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.site = site
        self.ttl = ttl
        self._clock = clock
        self._resolved: dict[str, tuple[float, Path | None]] = {}
        self._scans: dict[tuple[str, bool, bool, tuple[str, ...]], tuple[_Stamp, list[Found]]] = {}

    def resolve(self, url_path: str) -> Path | None:
        """The file a request for ``url_path`` would serve, or None."""
        now = self._clock()
        cached = self._resolved.get(url_path)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        path = self.site.resolve(url_path)
        if len(self._resolved) > 4 * self._MAX_ENTRIES:
            self._resolved.clear()
        self._resolved[url_path] = (now, path)
        return path

    def forget(self) -> None:
        """Ask the disk again whether paths are files (scans stay: they are checked by stat)."""
        self._resolved.clear()

    def stylesheet(self, url_path: str, critical: bool) -> list[Found]:
        """What the stylesheet at ``url_path`` makes the browser fetch."""
        return self._scan(url_path, False, critical, None)

    def module(self, url_path: str, import_map: ImportMap | None) -> list[Found]:
        """The static imports of the module at ``url_path``, through the page's import map."""
        return self._scan(url_path, True, True, import_map)

    def _scan(self, url_path: str, module: bool, critical: bool, import_map: ImportMap | None) -> list[Found]:
        path = self.resolve(url_path)
        if path is None:
            return []
        # A module's imports depend on the page's import map: pages with the same map share.
        key = (url_path, module, critical, import_map.key if import_map is not None else ())
        try:
            st = os.stat(path)
        except OSError:
            return []
        stamp = (str(path), st.st_size, st.st_mtime_ns)
        cached = self._scans.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            text = path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return []
        url = site_url(url_path)
        found = scan_module(text, url, import_map) if module else scan_stylesheet(text, url, critical=critical)
        if len(self._scans) >= self._MAX_ENTRIES:
            self._scans.clear()
        self._scans[key] = (stamp, found)
        return found
