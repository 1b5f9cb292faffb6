"""The Jinja2 side of ``templates.py``: the environment, its loader and bytecode cache, and the
conversion of Jinja's exceptions into ``TemplateError``.

Imported the first time a page is really rendered or checked, so a worker serving a plain site
(Sphinx output, say, whose pages hold ``{{`` only as text) never loads Jinja2 (about 5 MB).

Dependency tracking goes through the loader: Jinja's own template cache is switched off so that
every extends/include/import of a render passes through ``_SiteLoader.load``, which keeps its
own compiled-template cache (validated by stat on each load) and records what it handed out.
Compiled code also goes to an in-memory bytecode cache, so a template edited and reverted, or
compiled by ``check_all`` at startup, is not compiled again.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
import jinja2.nodes
from jinja2.bccache import Bucket

from pushserve.site.template_files import Signature, TemplateError, file_signature, site_file, site_relative

_BYTECODE_ENTRIES = 1024


@dataclass(slots=True)
class _Compiled:
    template: jinja2.Template
    signature: Signature


class _MemoryBytecodeCache(jinja2.BytecodeCache):
    """Compiled template code kept in memory, keyed by template and source checksum (Jinja
    checks the checksum itself); bounded so a long dev session does not grow without end."""

    def __init__(self, limit: int = _BYTECODE_ENTRIES) -> None:
        self._store: OrderedDict[str, bytes] = OrderedDict()
        self._limit = limit

    def load_bytecode(self, bucket: Bucket) -> None:
        data = self._store.get(bucket.key)
        if data is not None:
            self._store.move_to_end(bucket.key)
            bucket.bytecode_from_string(data)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._store[bucket.key] = bucket.bytecode_to_string()
        self._store.move_to_end(bucket.key)
        while len(self._store) > self._limit:
            self._store.popitem(last=False)


class _SiteLoader(jinja2.BaseLoader):
    """Loads templates from the site folder; caches compiled templates (revalidated with a stat
    on every load) and records each file a render asks for, found or not."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.compiled: dict[str, _Compiled] = {}
        self.filenames: dict[str, str] = {}  # absolute filename → template name
        self.recording: dict[str, Signature] | None = None
        self.source_signatures: dict[str, Signature] = {}

    def filename_for(self, name: str) -> str:
        filename = site_file(self.root, name)
        if filename is None:  # "..", say: a template name cannot leave the site
            raise jinja2.TemplateNotFound(name)
        return filename

    def _record(self, filename: str, signature: Signature) -> None:
        if self.recording is not None:
            self.recording.setdefault(filename, signature)

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        filename = self.filename_for(template)
        # Stat before reading: if the file changes in between, the recorded signature is the
        # older one and the next check renders again (never the other way round).
        signature = file_signature(filename)
        self._record(filename, signature)
        try:
            with open(filename, "rb") as f:
                data = f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise jinja2.TemplateNotFound(template) from None
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise jinja2.TemplateSyntaxError("file is not valid UTF-8", line, template, filename) from None
        self.filenames[filename] = template
        self.source_signatures[filename] = signature
        return source, filename, lambda: file_signature(filename) == signature

    def load(
        self,
        environment: jinja2.Environment,
        name: str,
        globals: MutableMapping[str, Any] | None = None,
    ) -> jinja2.Template:
        filename = self.filename_for(name)
        signature = file_signature(filename)
        cached = self.compiled.get(name)
        if cached is not None and signature is not None and cached.signature == signature:
            self._record(filename, signature)
            if globals:
                cached.template.globals.update(globals)
            return cached.template
        template = super().load(environment, name, globals)
        # Keep the signature get_source read under, so a change made meanwhile is seen next time.
        self.compiled[name] = _Compiled(template, self.source_signatures.get(filename, signature))
        return template


class Engine:
    """One Jinja2 environment over the site folder, with ``site`` in every template's scope."""

    def __init__(self, root: Path, site: Mapping[str, object], strict: bool) -> None:
        self.root = root
        self._loader = _SiteLoader(root)
        self.env = jinja2.Environment(
            loader=self._loader,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "xml")),
            undefined=jinja2.StrictUndefined if strict else jinja2.Undefined,
            bytecode_cache=_MemoryBytecodeCache(),
            cache_size=0,  # the loader caches, so that every load is seen (see module doc)
            auto_reload=False,
            keep_trailing_newline=True,
        )
        self.env.globals["site"] = dict(site)

    def render(self, rel_path: str, request: object) -> tuple[str, dict[str, Signature]]:
        """The page's text (``request`` is the ``request`` it sees: a templates.PageRequest) and
        every template file the render asked for, found or not."""
        deps: dict[str, Signature] = {}
        self._loader.recording = deps
        try:
            return self.env.get_template(rel_path).render(request=request), deps
        except Exception as e:
            raise self._convert(e, rel_path) from None
        finally:
            self._loader.recording = None

    def check(self, rel_path: str) -> list[TemplateError]:
        """Compile the template, and check that the templates it names (extends, include,
        import with a constant name) exist."""
        try:
            source, filename, _ = self._loader.get_source(self.env, rel_path)
            ast = self.env.parse(source, rel_path, filename)
            self.env.compile(ast, rel_path, filename)
        except jinja2.TemplateError as e:
            return [self._convert(e, rel_path)]
        return self._missing_references(ast, rel_path)

    def _missing_references(self, ast: jinja2.nodes.Template, rel_path: str) -> list[TemplateError]:
        errors: list[TemplateError] = []
        for node in ast.find_all((jinja2.nodes.Extends, jinja2.nodes.Include,
                                  jinja2.nodes.Import, jinja2.nodes.FromImport)):
            target = getattr(node, "template", None)
            if not isinstance(target, jinja2.nodes.Const) or not isinstance(target.value, str):
                continue  # a name computed at render time cannot be checked here
            if isinstance(node, jinja2.nodes.Include) and node.ignore_missing:
                continue
            filename = site_file(self.root, target.value)
            if filename is None or not os.path.isfile(filename):
                errors.append(TemplateError(rel_path, node.lineno, f"template {target.value!r} not found"))
        return errors


    def _convert(self, exc: BaseException, rel_path: str) -> TemplateError:
        if isinstance(exc, jinja2.TemplateSyntaxError):
            file = site_relative(self.root, exc.filename) if exc.filename else (exc.name or rel_path)
            return TemplateError(file, exc.lineno or 0, exc.message or "syntax error")
        file, line = self._innermost_template_frame(exc.__traceback__) or (rel_path, 0)
        if isinstance(exc, jinja2.TemplatesNotFound):
            message = "none of the templates " + ", ".join(repr(n) for n in exc.templates) + " found"
        elif isinstance(exc, jinja2.TemplateNotFound):
            message = f"template {exc.name!r} not found"
        elif isinstance(exc, jinja2.UndefinedError):
            message = exc.message or "undefined value"
        else:
            message = f"{type(exc).__name__}: {exc}"
        return TemplateError(file, line, message)

    def _innermost_template_frame(self, tb: TracebackType | None) -> tuple[str, int] | None:
        # Jinja rewrites tracebacks so that template code shows as frames whose filename is the
        # template file and whose line is the template line; the last such frame is the one
        # where the error happened (inside an include, that is the included file).
        found: tuple[str, int] | None = None
        while tb is not None:
            filename = tb.tb_frame.f_code.co_filename
            if filename in self._loader.filenames:
                found = (site_relative(self.root, filename), tb.tb_lineno)
            tb = tb.tb_next
        return found
