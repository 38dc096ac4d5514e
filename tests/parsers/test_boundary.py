"""The fast boundary matcher gives exactly what feedparser's own regular expression gives."""

from __future__ import annotations

import re
from email import feedparser

from hypothesis import given, settings
from hypothesis import strategies as st

from pytrs.parsers.boundary import BoundaryPattern, _FeedparserRe, install

SUFFIX = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
boundaries = st.text(alphabet="ab=_-.+()?*[]\\^$ '/:,x", min_size=0, max_size=12)
tails = st.text(alphabet="-- \t\r\nx=", max_size=8)


def reference(separator: str) -> re.Pattern[str]:
    return re.compile("(?P<sep>" + re.escape(separator) + SUFFIX)


def same(separator: str, line: str) -> None:
    expected = reference(separator).match(line)
    got = BoundaryPattern(separator).match(line)
    assert (got is None) == (expected is None), (separator, line)
    if expected is not None and got is not None:
        for name in (0, "sep", "end", "ws", "linesep"):
            assert got.group(name) == expected.group(name), (separator, line, name)


@settings(max_examples=2000, derandomize=True)
@given(boundaries, tails)
def test_matches_like_the_regular_expression(boundary: str, tail: str) -> None:
    separator = "--" + boundary
    same(separator, separator + tail)
    same(separator, tail + separator)
    same(separator, separator[:-1] + tail)


@settings(max_examples=500, derandomize=True)
@given(st.text(max_size=30))
def test_the_pattern_feedparser_builds_gives_back_its_separator(boundary: str) -> None:
    separator = "--" + boundary
    pattern = _FeedparserRe().compile("(?P<sep>" + re.escape(separator) + SUFFIX)
    assert isinstance(pattern, BoundaryPattern) and pattern.separator == separator


def test_known_lines() -> None:
    for line in ("--b\n", "--b--\n", "--b--", "--b \t\r\n", "--b\r\n\n", "--bx\n", "--b\r\r"):
        same("--b", line)


def test_installed_parser_still_parses_multipart() -> None:
    install()
    assert not isinstance(feedparser.re.compile("a+"), BoundaryPattern)
    raw = (
        b'Content-Type: multipart/mixed; boundary="a.b+c(d)"\n\n'
        b"preamble\n--a.b+c(d)\nContent-Type: text/plain\n\none\n"
        b"--a.b+c(d)\nContent-Type: text/plain\n\ntwo\n--a.b+c(d)--\nepilogue\n"
    )
    from email import message_from_bytes

    msg = message_from_bytes(raw)
    assert [p.get_payload() for p in msg.get_payload()] == ["one", "two"]
    assert msg.epilogue == "epilogue\n"
