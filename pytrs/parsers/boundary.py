"""A faster boundary matcher for the standard library's MIME parser (used by `parse_mail`).

`email.feedparser` compiles a fresh regular expression for every multipart boundary it meets.
Boundaries are unique per message, so `re`'s cache never hits and compiling costs about a
quarter of parsing an ordinary multipart mail. `install()` gives `email.feedparser` a stand-in
for its `re` module whose `compile` recognises exactly that one pattern shape and returns a
plain-Python matcher with the same results; every other pattern goes to `re` unchanged.
`tests/parsers/test_boundary.py` checks the matcher against the real expression.
"""

from __future__ import annotations

import re
from email import feedparser
from typing import Any

# The pattern feedparser builds: '(?P<sep>' + re.escape(separator) + _SUFFIX.
_PREFIX = "(?P<sep>"
_SUFFIX = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)
_LINESEPS = ("\r\n", "\r", "\n")


class BoundaryMatch:
    """The groups of a successful match, as `re.Match.group` returns them."""

    __slots__ = ("_groups", "_whole")

    def __init__(self, whole: str, groups: dict[str, str | None]) -> None:
        self._whole = whole
        self._groups = groups

    def group(self, name: str | int = 0) -> str | None:
        if name == 0:
            return self._whole
        return self._groups[str(name)]


class BoundaryPattern:
    """Matches `separator`, an optional `--`, blanks and an optional line end, then the end
    of the line (where `$` also allows one final newline), like the expression it replaces."""

    __slots__ = ("separator",)

    def __init__(self, separator: str) -> None:
        self.separator = separator

    def match(self, line: str) -> BoundaryMatch | None:
        if not line.startswith(self.separator):
            return None
        rest = line[len(self.separator) :]
        end = None
        if rest.startswith("--"):
            end, rest = "--", rest[2:]
        blanks = len(rest) - len(rest.lstrip(" \t"))
        ws, rest = rest[:blanks], rest[blanks:]
        linesep = next((sep for sep in _LINESEPS if rest.startswith(sep)), None)
        after = rest[len(linesep) :] if linesep else rest
        # `$` matches at the very end or before a newline that ends the string.
        if after not in ("", "\n"):
            return None
        consumed = len(line) - len(after)
        groups = {"sep": self.separator, "end": end, "ws": ws, "linesep": linesep}
        return BoundaryMatch(line[:consumed], groups)


def _escaped(match: re.Match[str]) -> str:
    # A function, because `re` expands a template such as "\\1" in Python for every match.
    return match[1]


class _FeedparserRe:
    """The `re` module as feedparser sees it once `install()` ran."""

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)

    def compile(self, pattern: Any, flags: int = 0) -> Any:
        if (
            flags == 0
            and isinstance(pattern, str)
            and pattern.startswith(_PREFIX)
            and pattern.endswith(_SUFFIX)
        ):
            escaped = pattern[len(_PREFIX) : -len(_SUFFIX)]
            return BoundaryPattern(_UNESCAPE.sub(_escaped, escaped))
        return re.compile(pattern, flags)


def install() -> None:
    """Give email.feedparser the fast boundary matcher (idempotent)."""
    # setattr: the typeshed stubs do not declare the module's `re` import.
    if not isinstance(getattr(feedparser, "re", None), _FeedparserRe):
        setattr(feedparser, "re", _FeedparserRe())  # noqa: B010


def uninstall() -> None:
    """Give email.feedparser its own `re` back (benchmarks measure the stock parser)."""
    setattr(feedparser, "re", re)  # noqa: B010
