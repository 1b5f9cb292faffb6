"""Template files without Jinja2: what a template name stands for in the site folder (and a file's
name within it), a file's signature (to tell it changed), and the error a template author can cause.  Shared by
``templates.py`` (which decides what is a template) and ``jinja.py`` (which renders)."""

from __future__ import annotations

import os
from pathlib import Path

# (mtime_ns, size, inode) of a file, or None when it did not exist.
Signature = tuple[int, int, int] | None


class TemplateError(Exception):
    """A template that cannot be compiled or rendered.  ``file`` is site-relative; ``line`` is
    1-based, 0 when unknown."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(file, line, message)
        self.file = file
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def file_signature(path: str) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def site_file(root: Path, name: str) -> str | None:
    """The file a template name ("layouts/base.html") stands for under ``root``; None for a name
    that would leave it (one with a ".." piece)."""
    pieces = []
    for piece in name.split("/"):
        if piece == os.pardir or os.sep in piece or (os.altsep and os.altsep in piece):
            return None
        if piece and piece != ".":
            pieces.append(piece)
    return os.path.join(root, *pieces)


def site_relative(root: Path, filename: str) -> str:
    """``filename`` as a path relative to ``root`` (as the site names it), or unchanged when it
    lies outside."""
    try:
        return Path(filename).relative_to(root).as_posix()
    except ValueError:
        return filename
