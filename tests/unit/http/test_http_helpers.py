"""pushserve.http helpers: MIME table, HTTP dates, conditional requests, byte ranges."""

from __future__ import annotations

import calendar
import email.utils

import pytest

from pushserve.http import conditional
from pushserve.http.dates import DateHeader, http_date, parse_http_date
from pushserve.http.mime import DEFAULT_TYPE, TYPES, content_type
from pushserve.http.ranges import UNSATISFIABLE, ByteRange, parse_range, unsatisfied_range

# -- mime ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("index.html", b"text/html; charset=utf-8"),
    ("old.HTM", b"text/html; charset=utf-8"),
    ("css/site.css", b"text/css; charset=utf-8"),
    ("app.js", b"text/javascript; charset=utf-8"),
    ("mod.mjs", b"text/javascript; charset=utf-8"),
    ("lib.cjs", b"text/javascript; charset=utf-8"),
    ("data.json", b"application/json; charset=utf-8"),
    ("app.js.map", b"application/json; charset=utf-8"),
    ("logo.svg", b"image/svg+xml; charset=utf-8"),
    ("feed.xml", b"application/xml; charset=utf-8"),
    ("site.webmanifest", b"application/manifest+json; charset=utf-8"),
    ("notes.txt", b"text/plain; charset=utf-8"),
    ("table.csv", b"text/csv; charset=utf-8"),
    ("README.md", b"text/markdown; charset=utf-8"),
    ("mod.wasm", b"application/wasm"),
    ("f.woff", b"font/woff"),
    ("f.woff2", b"font/woff2"),
    ("f.ttf", b"font/ttf"),
    ("f.otf", b"font/otf"),
    ("p.webp", b"image/webp"),
    ("p.avif", b"image/avif"),
    ("p.png", b"image/png"),
    ("p.jpg", b"image/jpeg"),
    ("p.JPEG", b"image/jpeg"),
    ("p.gif", b"image/gif"),
    ("favicon.ico", b"image/vnd.microsoft.icon"),
    ("doc.pdf", b"application/pdf"),
    ("v.mp4", b"video/mp4"),
    ("v.webm", b"video/webm"),
    ("a.mp3", b"audio/mpeg"),
    ("a.ogg", b"audio/ogg"),
    ("a.wav", b"audio/wav"),
])
def test_content_types(name: str, expected: bytes) -> None:
    assert content_type(name) == expected


@pytest.mark.parametrize("name", ["LICENSE", "a/b.unknownext", ".htaccess", "dir.d/file", "trailingdot."])
def test_unknown_types_are_octet_stream(name: str) -> None:
    assert content_type(name) == DEFAULT_TYPE == b"application/octet-stream"


def test_charset_only_on_text_kinds() -> None:
    for ext, value in TYPES.items():
        textual = value.startswith(b"text/") or ext in {"js", "json", "svg", "xml", "webmanifest", "map"}
        if textual:
            assert value.endswith(b"; charset=utf-8"), ext
        if value.startswith((b"image/png", b"font/", b"video/", b"audio/", b"application/wasm")):
            assert b"charset" not in value, ext


# -- dates --------------------------------------------------------------------------------------


def test_http_date_is_imf_fixdate() -> None:
    assert http_date(784111777) == b"Sun, 06 Nov 1994 08:49:37 GMT"
    assert http_date(0) == b"Thu, 01 Jan 1970 00:00:00 GMT"
    assert http_date(784111777.9) == b"Sun, 06 Nov 1994 08:49:37 GMT"  # fractions are dropped


@pytest.mark.parametrize("ts", [0, 784111777, 951782400, 1700000000, 4102444799])
def test_date_round_trip(ts: int) -> None:
    formatted = http_date(ts)
    assert formatted == email.utils.formatdate(ts, usegmt=True).encode()
    assert parse_http_date(formatted) == ts


def test_parse_all_three_formats() -> None:
    expected = calendar.timegm((1994, 11, 6, 8, 49, 37))
    assert parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT") == expected
    assert parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT") == expected
    assert parse_http_date(b"Sun Nov  6 08:49:37 1994") == expected
    assert parse_http_date(b"  Sun, 06 Nov 1994 08:49:37 GMT ") == expected


def test_parse_agrees_with_calendar_on_every_month() -> None:
    # dates.py counts days itself (calendar would import locale and datetime into every worker).
    for year in (1, 4, 100, 1900, 1969, 1970, 1972, 2000, 2024, 2100, 2400, 9999):
        for month, name in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                      "Nov", "Dec"), start=1):
            last = calendar.monthrange(year, month)[1]
            for day in (1, last):
                value = f"Mon, {day:02d} {name} {year:04d} 23:59:59 GMT".encode()
                assert parse_http_date(value) == calendar.timegm((year, month, day, 23, 59, 59)), value
            assert parse_http_date(f"Mon, {last + 1:02d} {name} {year:04d} 00:00:00 GMT".encode()) is None


@pytest.mark.parametrize("bad", [
    b"", b"yesterday", b"Sun, 06 Nov 1994 08:49:37 PST", b"Sun, 31 Feb 1994 08:49:37 GMT",
    b"Sun, 06 Foo 1994 08:49:37 GMT", b"Sun, 06 Nov 1994 25:49:37 GMT", b"Sun, 06 Nov 94 08:49:37 GMT",
    b"Sun, xx Nov 1994 08:49:37 GMT", b"Sun, 06 Nov 1994 08:49 GMT", b"1994-11-06T08:49:37Z",
    b"Sun, 06 Nov 0000 08:49:37 GMT",
])
def test_parse_rejects_garbage(bad: bytes) -> None:
    assert parse_http_date(bad) is None


def test_date_header_recomputed_once_per_second() -> None:
    d = DateHeader()
    first = d.value(1700000000.1)
    assert first == http_date(1700000000)
    assert d.value(1700000000.9) is first  # same second: the very same object, nothing formatted
    later = d.value(1700000001.0)
    assert later == http_date(1700000001)
    assert parse_http_date(d.value()) is not None  # reads the clock itself when not given one


# -- conditional --------------------------------------------------------------------------------

ETAG = b'"abc-12"'
MTIME = 1700000000.5
AT = http_date(1700000000)
BEFORE = http_date(1699999999)
AFTER = http_date(1700000001)


def ev(method: bytes = b"GET", **kw: bytes) -> int | None:
    return conditional.evaluate(method, etag=ETAG, last_modified=MTIME, **kw)


def test_parse_etags() -> None:
    assert conditional.parse_etags(b"*") is None
    assert conditional.parse_etags(b'"a", W/"b",  "c,d" ,junk, "e"') == [b'"a"', b'W/"b"', b'"c,d"', b'"e"']
    assert conditional.parse_etags(b'"unterminated') == []


def test_no_conditions() -> None:
    assert ev() is None


def test_if_none_match() -> None:
    assert ev(if_none_match=ETAG) == 304
    assert ev(if_none_match=b'W/"abc-12"') == 304  # weak comparison
    assert ev(if_none_match=b'"x", "abc-12"') == 304
    assert ev(if_none_match=b"*") == 304
    assert ev(if_none_match=b'"other"') is None
    assert ev(b"HEAD", if_none_match=ETAG) == 304
    assert ev(b"POST", if_none_match=ETAG) == 412  # unsafe methods fail instead


def test_if_modified_since() -> None:
    assert ev(if_modified_since=AT) == 304
    assert ev(if_modified_since=AFTER) == 304
    assert ev(if_modified_since=BEFORE) is None
    assert ev(if_modified_since=b"not a date") is None
    assert ev(b"POST", if_modified_since=AT) is None


def test_if_none_match_wins_over_if_modified_since() -> None:
    # The date says "not modified", but the tag differs: If-Modified-Since must be ignored.
    assert ev(if_none_match=b'"other"', if_modified_since=AFTER) is None
    assert ev(if_none_match=ETAG, if_modified_since=BEFORE) == 304


def test_if_match() -> None:
    assert ev(if_match=ETAG) is None
    assert ev(if_match=b"*") is None
    assert ev(if_match=b'"x", "abc-12"') is None
    assert ev(if_match=b'"other"') == 412
    assert ev(if_match=b'W/"abc-12"') == 412  # strong comparison
    # If-Match is evaluated first: its failure wins over a matching If-None-Match.
    assert ev(if_match=b'"other"', if_none_match=ETAG) == 412


def test_if_unmodified_since() -> None:
    assert ev(if_unmodified_since=AT) is None
    assert ev(if_unmodified_since=BEFORE) == 412
    assert ev(if_unmodified_since=b"garbage") is None
    # Ignored when If-Match is present.
    assert ev(if_match=ETAG, if_unmodified_since=BEFORE) is None


def test_dates_ignored_without_last_modified() -> None:
    assert conditional.evaluate(b"GET", etag=ETAG, last_modified=None, if_modified_since=AFTER) is None
    assert conditional.evaluate(b"GET", etag=ETAG, last_modified=None, if_unmodified_since=BEFORE) is None


def test_if_range() -> None:
    assert conditional.if_range_matches(ETAG, etag=ETAG, last_modified=MTIME)
    assert not conditional.if_range_matches(b'"other"', etag=ETAG, last_modified=MTIME)
    assert not conditional.if_range_matches(b'W/"abc-12"', etag=ETAG, last_modified=MTIME)
    assert conditional.if_range_matches(AT, etag=ETAG, last_modified=MTIME)
    assert not conditional.if_range_matches(AFTER, etag=ETAG, last_modified=MTIME)
    assert not conditional.if_range_matches(BEFORE, etag=ETAG, last_modified=MTIME)
    assert not conditional.if_range_matches(b"garbage", etag=ETAG, last_modified=MTIME)


# -- ranges -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (b"bytes=0-0", ByteRange(0, 0)),
    (b"bytes=0-99", ByteRange(0, 99)),
    (b"bytes=10-19", ByteRange(10, 19)),
    (b"bytes=10-500", ByteRange(10, 99)),  # clipped to the end
    (b"bytes=90-", ByteRange(90, 99)),
    (b"bytes=-10", ByteRange(90, 99)),
    (b"bytes=-500", ByteRange(0, 99)),
    (b"Bytes = 5-6", ByteRange(5, 6)),
    (b"bytes=5-6,", ByteRange(5, 6)),  # empty list members are allowed
])
def test_satisfiable_ranges(value: bytes, expected: ByteRange) -> None:
    assert parse_range(value, 100) == expected


@pytest.mark.parametrize("value", [b"bytes=100-", b"bytes=100-200", b"bytes=-0", b"bytes=500-600"])
def test_unsatisfiable_ranges(value: bytes) -> None:
    assert parse_range(value, 100) is UNSATISFIABLE


def test_empty_representation_has_no_satisfiable_range() -> None:
    assert parse_range(b"bytes=0-", 0) is UNSATISFIABLE
    assert parse_range(b"bytes=-5", 0) is UNSATISFIABLE


@pytest.mark.parametrize("value", [
    b"bytes=0-1,5-6",  # multiple ranges: ignored, the whole 200 is served
    b"bytes=5-1", b"bytes=abc", b"bytes=-", b"bytes=1-2-3", b"items=0-5", b"0-5", b"bytes=",
    b"bytes=+1-2", b"bytes=1-0x2", b"bytes=" + b"9" * 40 + b"-",
])
def test_ignored_ranges(value: bytes) -> None:
    assert parse_range(value, 100) is None


def test_content_range_values() -> None:
    r = ByteRange(10, 19)
    assert r.length == 10
    assert r.content_range(100) == b"bytes 10-19/100"
    assert unsatisfied_range(100) == b"bytes */100"
