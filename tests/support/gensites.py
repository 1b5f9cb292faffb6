"""Small documentation sites built the way their users build them: with Sphinx and MkDocs from
PyPI (the `test` extra installs both), a few pages and a code sample full of Jinja syntax."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# A code sample as documentation of template languages has it: Jinja syntax written as text.
JINJA_SAMPLE = '{% extends "base.html" %}\n{% block body %}{{ user.name }} {# a comment #}{% endblock %}'


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def build_sphinx(dest: Path, src: Path | None = None) -> Path:
    """Build a three-page Sphinx site (alabaster theme) into ``dest``; returns ``dest``."""
    src = src or dest.with_name(dest.name + "-src")
    _write(src / "conf.py", 'project = "Demo"\nhtml_theme = "alabaster"\n')
    _write(src / "index.rst", "Demo\n====\n\n.. toctree::\n\n   guide\n   api/reference\n\nWelcome.\n")
    sample = "\n".join("   " + line for line in JINJA_SAMPLE.splitlines())
    _write(src / "guide.rst", f"Guide\n=====\n\nA template:\n\n.. code-block:: jinja\n\n{sample}\n\n"
           f"The same as text:\n\n.. code-block:: text\n\n{sample}\n")
    _write(src / "api" / "reference.rst", "Reference\n=========\n\n``{{ value }}`` is replaced.\n")
    subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(dest)],
                   check=True, capture_output=True, timeout=300)
    return dest


def build_mkdocs(dest: Path, src: Path | None = None) -> Path:
    """Build a three-page MkDocs site (its default theme) into ``dest``; returns ``dest``."""
    src = src or dest.with_name(dest.name + "-src")
    _write(src / "mkdocs.yml", "site_name: Demo\nnav:\n  - Home: index.md\n  - Guide: guide.md\n"
           "  - Reference: api/reference.md\n")
    _write(src / "docs" / "index.md", "# Home\n\nWelcome.\n")
    _write(src / "docs" / "guide.md", f"# Guide\n\n```\n{JINJA_SAMPLE}\n```\n")
    _write(src / "docs" / "api" / "reference.md", "# Reference\n\n`{{ value }}` is replaced.\n")
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(src / "mkdocs.yml"),
                    "-d", str(dest)], check=True, capture_output=True, timeout=300)
    return dest
