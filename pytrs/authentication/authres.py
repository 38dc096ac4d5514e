"""Reading an Authentication-Results header field (RFC 8601).

Place in the flow: ``authentication.authenticity`` reads the verdict of the MTA in front of pytrs
(whether an agent's mail passed DKIM or DMARC there) from the topmost Authentication-Results
field; this module only turns one field's text into data. Pure and total: any text yields a
value, never an exception, because the text comes from mail.

The grammar (RFC 8601 §2.2), after comments are dropped::

    authserv-id [version] ( "; none" / 1*( ";" method[/version] "=" result
                                          ["reason=" value] *(ptype "." property "=" value) ) )

e.g. ``mx.example.com 1; dkim=pass (good signature) header.d=example.com header.s=s1;
dmarc=pass header.from=example.com``. Values may be quoted strings; comments nest and may sit
anywhere; ``;`` inside either does not separate results. A result that does not follow the
grammar is left out and the others are kept (one broken resinfo from an odd MTA must not hide
the rest); a field without an authserv-id is no field at all. The ``authres`` package on PyPI
would do this too, but it has seen no release since 2019, and this is 150 lines.
"""

from __future__ import annotations

from dataclasses import dataclass

# Lexer token kinds.
_ATOM, _QUOTED, _SPECIAL = "atom", "quoted", "special"
_SPECIALS = frozenset(";=/")
_SPACE = frozenset(" \t\r\n")
_ATOM_END = _SPACE | _SPECIALS | frozenset('("')


@dataclass(frozen=True, slots=True)
class ResInfo:
    """One result: ``dkim=pass header.d=example.com`` → method "dkim", result "pass", ...

    Method, result and property names are lower-cased; values keep their case.
    """

    method: str
    result: str
    reason: str = ""
    properties: tuple[tuple[str, str], ...] = ()  # (("header.d", "example.com"), ...)

    def get(self, name: str) -> str:
        """The value of property `name` (e.g. "header.d"), "" when absent."""
        return next((value for key, value in self.properties if key == name), "")


@dataclass(frozen=True, slots=True)
class AuthResults:
    """One Authentication-Results field: who wrote it and what it found."""

    authserv_id: str  # lower-cased
    results: tuple[ResInfo, ...]
    version: int = 1


def parse_authentication_results(value: str) -> AuthResults | None:
    """The field `value` as data, or None when it names no authserv-id. Never raises."""
    segments = _split(_tokens(value))
    head = segments[0]
    if not head or head[0][0] == _SPECIAL:
        return None
    authserv_id = head[0][1].strip().lower()
    if not authserv_id:
        return None
    version = 1
    token = head[1][1] if len(head) > 1 and head[1][0] == _ATOM else ""
    # ASCII digits only: str.isdigit() is true for "¹" too, which int() refuses.
    if token.isascii() and token.isdigit():
        # Bounded: a 500-digit "version" would otherwise be a costly int().
        version = int(token[:9])
    results = tuple(r for r in map(_resinfo, segments[1:]) if r is not None)
    return AuthResults(authserv_id, results, version)


def _tokens(text: str) -> list[tuple[str, str]]:
    """Atoms, quoted strings (unquoted) and the specials ``; = /``; comments and blanks gone.

    An unterminated comment or quoted string ends at the end of the text.
    """
    tokens: list[tuple[str, str]] = []
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char in _SPACE:
            i += 1
        elif char == "(":
            i = _skip_comment(text, i)
        elif char == '"':
            i, quoted = _quoted(text, i)
            tokens.append((_QUOTED, quoted))
        elif char in _SPECIALS:
            tokens.append((_SPECIAL, char))
            i += 1
        else:
            start = i
            while i < end and text[i] not in _ATOM_END:
                i += 1
            tokens.append((_ATOM, text[start:i]))
    return tokens


def _skip_comment(text: str, i: int) -> int:
    depth, end = 0, len(text)
    while i < end:
        char = text[i]
        if char == "\\":
            i += 2
            continue
        depth += (char == "(") - (char == ")")
        i += 1
        if depth == 0:
            break
    return i


def _quoted(text: str, i: int) -> tuple[int, str]:
    chars, i, end = [], i + 1, len(text)
    while i < end and text[i] != '"':
        if text[i] == "\\" and i + 1 < end:
            i += 1
        chars.append(text[i])
        i += 1
    return i + 1, "".join(chars)


def _split(tokens: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    segments: list[list[tuple[str, str]]] = [[]]
    for token in tokens:
        if token == (_SPECIAL, ";"):
            segments.append([])
        else:
            segments[-1].append(token)
    return segments


def _resinfo(tokens: list[tuple[str, str]]) -> ResInfo | None:
    """One ``method[/version]=result [reason=…] [ptype.property=value …]``, or None."""
    if len(tokens) >= 5 and tokens[1] == (_SPECIAL, "/"):
        del tokens[1:3]  # the method version says nothing we use
    if len(tokens) < 3 or tokens[0][0] != _ATOM or tokens[1] != (_SPECIAL, "="):
        return None
    if tokens[2][0] != _ATOM:
        return None
    method, result = tokens[0][1].lower(), tokens[2][1].lower()
    reason, properties = "", []
    rest = tokens[3:]
    while rest and rest[0][0] == _ATOM:
        # The name may be split around its dot by blanks or a comment: "header (x) .d".
        name, i = rest[0][1], 1
        while (
            i < len(rest)
            and rest[i][0] == _ATOM
            and (name.endswith(".") or rest[i][1].startswith("."))
        ):
            name, i = name + rest[i][1], i + 1
        if i + 1 >= len(rest) or rest[i] != (_SPECIAL, "=") or rest[i + 1][0] == _SPECIAL:
            break
        value, rest = rest[i + 1][1], rest[i + 2 :]
        if rest and rest[0][0] == _ATOM and rest[0][1].startswith("@"):
            # A quoted local part and its domain: "john smith"@example.com.
            value, rest = value + rest[0][1], rest[1:]
        name = name.lower()
        if name == "reason":
            reason = value
        elif "." in name:
            properties.append((name, value))
    return ResInfo(method, result, reason, tuple(properties))
