"""Finding where an unclosed Jinja2 block began, and the source excerpt around it."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from pushserve.site.error_page import Problem, excerpt, overlay_html, unclosed_block
from pushserve.site.template_files import TemplateError


@pytest.mark.parametrize(("source", "opened"), [
    ("a\n{% block x %}\nb\n{% if y %}\n{% endif %}\nc\nd\n", 2),  # open to the end of the file
    ("{% for a in b %}\n{% if x %}\n{% endfor %}\n", 2),  # closed with the wrong end tag
    ("{% raw %}{% if %}{% endraw %}\n{% set x = 1 %}{% set y %}\n", 2),  # raw text and inline set are no blocks
    ("{# {% if %} #}\n{% if a %}{% for x in y %}{% endfor %}\n\n", 2),  # nor a tag in a comment
    ("{%- if a -%}\n{% if b %}{% endif %}\n", 1),  # whitespace control
])
def test_unclosed_block_is_found_where_jinja_reports_it(source: str, opened: int) -> None:
    with pytest.raises(jinja2.TemplateSyntaxError) as info:
        jinja2.Environment().parse(source)
    e = info.value
    tag = e.message.rsplit("'", 2)[1]  # "... needs to be closed is 'if'."
    assert unclosed_block(source, e.lineno, tag) == opened


def test_problem_of_template_reads_the_source(tmp_path: Path) -> None:
    (tmp_path / "p.html").write_text("one\n{% if x %}\nthree\n")
    e = TemplateError("p.html", 4, "Unexpected end of template. Jinja was looking for the following tags: "
                      "'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.")
    p = Problem.of_template(e, tmp_path)
    assert (p.opened, p.opened_tag) == (2, "if")
    page = overlay_html("Template error", [p], tmp_path)
    assert "opened at line 2 is never closed" in page and "{% if x %}" in page
    # A file outside the site is never read into the page.
    outside = Problem.of_template(TemplateError("../etc/passwd", 3, "x"), tmp_path)
    assert "<pre>" not in overlay_html("t", [outside], tmp_path)


def test_excerpt_marks_lines_and_stays_in_the_file() -> None:
    src = "\n".join(f"l{n}" for n in range(1, 11))
    assert excerpt(src, 1, {1}) == [(1, "l1", True), (2, "l2", False), (3, "l3", False), (4, "l4", False)]
    assert [n for n, _, _ in excerpt(src, 10, {10})] == [7, 8, 9, 10]
