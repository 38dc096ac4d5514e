"""The address of a MAIL FROM / RCPT TO command, read without the `email` package when plain.

aiosmtpd reads these addresses with `email._header_value_parser`, a full RFC 5322 parser that
builds a token tree for every command: about a tenth of a millisecond per mail, a sixth of what
the whole SMTP session costs. Nearly every client sends the plain form `<local@domain>`, with
an ASCII dot-atom on each side, maybe followed by parameters (`SIZE=1234 BODY=8BITMIME`). For
exactly that form the parser's answer is known in advance — the text between the brackets and
the parameters after the blanks — so `plain_path` returns it directly; for anything else
(comments, quoting, source routes, `<>`, non-ASCII, text without brackets …) it returns None
and the session falls back to aiosmtpd's own reading, so odd commands get the same address or
the same error as before (`tests/gateway/test_smtp_paths.py` compares the two).
"""

from __future__ import annotations

import re

# RFC 5322 atext (ASCII), as dot-atoms: no empty label, no leading or trailing dot.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
# The parameters start after blanks; the parser skips every kind of white space there (it
# strips with str.lstrip), but a comment "(…)" would be skipped too: that is left to it.
_PLAIN = re.compile(rf"<({_DOT_ATOM}@{_DOT_ATOM})>(?:[ \t]\s*(?=[^\s(])|[ \t]\s*$|$)")


def plain_path(arg: str) -> tuple[str, str] | None:
    """(address, parameters) of `<local@domain> [parameters]`, or None when `arg` is not that
    plain form and needs the full parser."""
    found = _PLAIN.match(arg)
    # "=?" could start an RFC 2047 encoded word, which the parser tries to decode.
    if found is None or "=?" in found.group(1):
        return None
    return found.group(1), arg[found.end() :]
