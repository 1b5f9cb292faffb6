"""The push manifest one worker serves from: each page's entry inferred when the page is first
asked for, the rest in the background (``build_steps``: small steps, so requests go first), and
kept while the files it was inferred from are unchanged.  A site's own push_manifest.json wins
for the pages it lists."""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from pathlib import Path

from pushserve.site.manifest import (
    UNANNOUNCED,
    Manifest,
    PushResource,
    finish,
    infer_steps,
    load_manifest_file,
    merge,
    to_json,
    to_json_obj,
)
from pushserve.site.paths import PrivateFiles, SitePaths, is_manifest_page, page_url
from pushserve.site.reads import SiteReads


class PushManifest:
    """The manifest one worker serves from.  The caller decides when files changed and asks
    ``pages_depending_on`` which pages to ``rebuild_page``."""

    def __init__(
        self,
        root: Path,
        render: Callable[[str], bytes] | None = None,
        *,
        explicit: Mapping[str, list[PushResource]] | None = None,
        template_deps: Callable[[str], Iterable[str]] | None = None,
        private: PrivateFiles | None = None,
        follow_symlinks: bool = False,
    ) -> None:
        self.site = SitePaths(root, private, follow_symlinks=follow_symlinks)
        self.root = Path(self.site.root)
        self._render = render
        self._explicit = {page: list(res) for page, res in (explicit or {}).items()}
        # Site-relative template files a page's HTML came from (when templates are in use).
        self._template_deps = template_deps
        self._inferred: Manifest = {}
        self._deps: dict[str, set[str]] = {}
        self._stamps: dict[str, tuple[tuple[str, int, int], ...]] = {}
        self._checked: dict[str, float] = {}
        # What each page's entry could not announce: (UNANNOUNCED kind, detail).
        self._notes: dict[str, list[tuple[str, str]]] = {}
        self._missing: dict[str, list[tuple[str, str]]] = {}  # page -> Inference.missing
        # One object per distinct resource and dependency name, however many pages share it.
        self._interned: dict[PushResource, PushResource] = {}
        self._reads = SiteReads(self.site)
        self._import_maps: set[str] = set()  # pages with an import map (see manifest.py)
        self.revalidate_after = 1.0

    @classmethod
    def build(
        cls,
        root: Path,
        render: Callable[[str], bytes] | None = None,
        explicit: Path | Mapping[str, list[PushResource]] | None = None,
        *,
        template_deps: Callable[[str], Iterable[str]] | None = None,
        private: PrivateFiles | None = None,
        lazy: bool = False,
        follow_symlinks: bool = False,
    ) -> tuple[PushManifest, list[str]]:
        """Infer every page (``lazy``: none yet, each when first asked for); ``explicit`` (a
        push_manifest.json path, or its parsed form) wins for the pages it lists.  Raises
        ManifestError for a broken explicit file."""
        if isinstance(explicit, (str, Path)):
            explicit = load_manifest_file(explicit)
        manifest = cls(root, render, explicit=explicit, template_deps=template_deps, private=private,
                       follow_symlinks=follow_symlinks)
        warnings = [] if lazy else manifest.rebuild()
        for page, resources in manifest._explicit.items():
            warnings.extend(f"push manifest: {page}: {res.path} is not a file of the site"
                            for res in resources if not manifest.site.exists(res.path))
        return manifest, warnings

    def rebuild(self) -> list[str]:
        """Infer every page again; returns the warnings (each once)."""
        self._inferred.clear()
        self._deps.clear()
        self._stamps.clear()
        self._notes.clear()
        self._missing.clear()
        warnings: list[str] = []
        self._reads.forget()
        for page in self.site.walk_pages():
            warnings.extend(self._infer(page))
        return list(dict.fromkeys(warnings))

    def build_steps(self) -> Iterator[str | None]:
        """Infer the pages not inferred yet, in small steps — a folder read, a piece of a page, one
        of its fetches — so a worker can build its manifest in the background between requests.
        Yields a page once its entry is done, None between."""
        for page in self.site.iter_pages():
            if page not in self._stamps and page not in self._explicit:
                yield from self._infer_steps(page)
                yield page
            else:
                yield None

    def unannounced(self) -> Counter[str]:
        """How many links of each UNANNOUNCED kind the pages inferred so far could not announce."""
        return Counter(kind for notes in self._notes.values() for kind, _ in notes)

    def notes(self, kind: str = "") -> list[str]:
        """The details behind ``unannounced`` (of one kind, or all), each once, page by page."""
        return list(dict.fromkeys(text for page in sorted(self._notes) for k, text in self._notes[page]
                                  if not kind or k == kind))

    def summary(self) -> list[str]:
        """A few lines for the log: counts, and one line per kind of link not announced."""
        pages = len(self._stamps.keys() | self._explicit.keys())
        resources = sum(len(r) for r in self.as_dict(build=False).values())
        lines = [f"push manifest: {pages} page{'s' if pages != 1 else ''}, "
                 f"{resources} resource{'s' if resources != 1 else ''} announced"]
        lines += [f"push manifest: not announced: {n} {UNANNOUNCED[kind]}"
                  for kind, n in sorted(self.unannounced().items())]
        if self._import_maps:
            n = len(self._import_maps)
            lines.append(f"push manifest: {n} page{'s' if n != 1 else ''} with an import map: module scripts "
                         "hinted as rel=preload, not modulepreload (an early module load can race the import "
                         "map and blank the page)")
        return lines

    def rebuild_page(self, rel_path: str) -> list[str]:
        """Infer one page again (after its file or one it depends on changed); a page that no
        longer exists is dropped."""
        self._reads.forget()  # something changed: what was remembered of the files may be stale
        return self._infer(rel_path)

    def _infer(self, rel_path: str) -> list[str]:
        return finish(self._infer_steps(rel_path))

    def _infer_steps(self, rel_path: str) -> Generator[None, None, list[str]]:
        rel_path = rel_path.lstrip("/")
        if not (is_manifest_page(rel_path) and self.site.servable(rel_path) and (self.root / rel_path).is_file()):
            for table in (self._inferred, self._deps, self._stamps, self._notes, self._missing):
                table.pop(rel_path, None)
            self._import_maps.discard(rel_path)
            return []
        deps = {rel_path}
        try:
            html = _read_page(self.root, rel_path, self._render)
        except Exception as e:  # a template error in one page must not take the manifest down
            text = f"{rel_path}: not rendered, nothing inferred: {e}"
            self._store(rel_path, [], deps | self._templates_of(rel_path), [("render", text)])
            self._missing.pop(rel_path, None)
            return [text]
        yield
        result = yield from infer_steps(html, page_url(rel_path), self.site, rel_path, self._reads)
        self._store(rel_path, result.resources, deps | result.depends_on | self._templates_of(rel_path),
                    list(zip(result.kinds, result.warnings, strict=True)))
        if result.missing:
            self._missing[rel_path] = result.missing
        else:
            self._missing.pop(rel_path, None)
        if result.import_map:
            self._import_maps.add(rel_path)
        else:
            self._import_maps.discard(rel_path)
        return result.warnings

    def _store(self, page: str, resources: list[PushResource], deps: set[str],
               notes: list[tuple[str, str]]) -> None:
        self._inferred[page] = [self._interned.setdefault(r, r) for r in resources]
        self._deps[page] = {sys.intern(d) for d in deps}
        self._stamps[page] = self._stamp(page)
        if notes:
            self._notes[page] = notes
        else:
            self._notes.pop(page, None)

    def _stamp(self, page: str) -> tuple[tuple[str, int, int], ...]:
        """Size and mtime of every file the page's entry was inferred from (-1 for missing ones)."""
        stamp = []
        for dep in sorted(self._deps.get(page, ())):
            try:
                st = os.stat(self.root / dep)
                stamp.append((dep, st.st_size, st.st_mtime_ns))
            except OSError:
                stamp.append((dep, -1, -1))
        return tuple(stamp)

    def refresh(self, page: str, now: float) -> None:
        """Rebuild a page's entry if a file it was inferred from changed: checked at most every
        ``revalidate_after`` seconds per page, so a server that is not watching files (outside dev
        mode) still follows edits to a page, its templates, its CSS and its modules."""
        if page not in self._stamps:
            if page not in self._explicit:
                self._infer(page)  # first asked for: inferred now (lazily)
                self._checked[page] = now
            return
        if now - self._checked.get(page, 0.0) < self.revalidate_after:
            return
        self._checked[page] = now
        if self._stamp(page) != self._stamps[page]:
            self.rebuild_page(page)

    def notes_of(self, page: str) -> list[tuple[str, str]]:
        """What a page's entry could not announce: (UNANNOUNCED kind, detail)."""
        return list(self._notes.get(page, ()))

    def missing_links(self) -> dict[tuple[str, str], list[str]]:
        """Links to no file of the site in the pages inferred so far: (what names it, the URL
        path) -> the pages that carry it."""
        out: dict[tuple[str, str], list[str]] = {}
        for page in sorted(self._missing):
            for link in self._missing[page]:
                out.setdefault(link, []).append(page)
        return out

    def sources_of(self, page: str) -> list[str]:
        """The files a page's HTML comes from: the page, then the templates it extends, includes
        or imports."""
        return [page, *sorted(self._templates_of(page) - {page})]

    def _templates_of(self, rel_path: str) -> set[str]:
        return set(self._template_deps(rel_path)) if self._template_deps is not None else set()

    def resources_for(self, page_rel_path: str) -> list[PushResource]:
        explicit = self._explicit.get(page_rel_path)
        if explicit is not None:
            return explicit
        return self._inferred.get(page_rel_path, [])

    def pages_depending_on(self, changed_path: str) -> set[str]:
        """Pages whose manifest entry may change because ``changed_path`` (site-relative) was
        created, modified or deleted."""
        changed = changed_path.lstrip("/")
        pages = {page for page, deps in self._deps.items() if changed in deps}
        if is_manifest_page(changed) and self.site.servable(changed):
            pages.add(changed)  # a new page, or one of ours
        elif self._template_deps is None and changed.lower().endswith((".html", ".htm")) \
                and changed in self.site.private:
            # A layout or partial, and nobody told us who includes it: any page may.
            pages.update(self._deps)
        return pages

    def pages(self) -> list[str]:
        return sorted(set(self._inferred) | set(self._explicit))

    def inferred(self) -> Manifest:
        return {page: list(res) for page, res in sorted(self._inferred.items())}

    def as_dict(self, *, build: bool = True) -> Manifest:
        """Every page's entry (``build``: inferring the pages not inferred yet first)."""
        if build:
            for _ in self.build_steps():
                pass
        return merge(self._inferred, self._explicit)

    def to_json_obj(self) -> dict[str, dict[str, dict[str, object]]]:
        return to_json_obj(self.as_dict())

    def to_json(self) -> str:
        return to_json(self.as_dict())


# --- whole site --------------------------------------------------------------------------------

def _read_page(root: Path, rel_path: str, render: Callable[[str], bytes] | None) -> bytes:
    if render is not None:
        return render(rel_path)
    return (root / rel_path).read_bytes()


def build_manifest(root: Path, render: Callable[[str], bytes] | None,
                   private: PrivateFiles | None = None) -> tuple[Manifest, list[str]]:
    """Infer the manifest of every page of the site.  ``render`` turns a page into the HTML it
    serves (templates); without it pages are read as they are.  A page that fails to render
    becomes a warning, not an error."""
    manifest = PushManifest(root, render, private=private)
    warnings = manifest.rebuild()
    return manifest.inferred(), warnings
