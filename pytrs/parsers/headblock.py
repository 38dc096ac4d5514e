"""The header block bound: a mail's header fields are counted and measured in its raw bytes,
before the `email` package sees them.

The stdlib parser turns every header line into objects (a line string, a name/value pair) and
keeps them all, so a 25 MB mail of a million short header lines would cost hundreds of
megabytes before any bound on the parsed fields could apply. `bound_header_block` keeps the
first `max_header_count` fields within `max_header_block_bytes` and drops the rest of the block.
The MIME fields found beyond the cut (Content-Type, Content-Transfer-Encoding, MIME-Version) are
kept, because the body that follows is still parsed as they declare it. The caller keeps the
raw mail whole; the parser works on the bounded copy.
"""

from __future__ import annotations

import re

# The end of the header block as the stdlib parser finds it: the first empty line, i.e.
# rb"\r?\n\r?\n|\r\r", written so that every alternative starts with a literal character:
# `re` then skips to the line breaks instead of trying the pattern at every byte (4x faster).
_BLANK_LINE = re.compile(rb"\n\r?\n|\r(?:\n\r?\n|\r)")
# A line break that starts a new field (a line starting with a blank continues the field). A CR
# is a line break of its own only when no LF follows.
_FIELD_START = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?![ \t])")
# A line the stdlib reads as a header field (feedparser's headerRE); any other line ends the
# header block and starts the body.
_HEADER_LINE = re.compile(rb"From |[\041-\071\073-\176]*:|[\t ]")
_MIME_FIELDS = tuple(
    re.compile(rb"^" + name + rb"[ \t]*:", re.IGNORECASE | re.MULTILINE)
    for name in (b"mime-version", b"content-type", b"content-transfer-encoding")
)


def bound_header_block(
    raw: bytes, max_count: int, max_bytes: int, warnings: list[str], *, body: bool = True
) -> bytes:
    """Return `raw` with its header block cut to the bounds (or `raw` itself when it fits).

    Without `body`, only the (bounded) header block is returned: for mail too large to parse.
    """
    blank = _BLANK_LINE.search(raw)
    end = blank.start() if blank is not None else len(raw)
    line_ends = raw.count(b"\n", 0, end) + raw.count(b"\r", 0, end)
    if end <= max_bytes and line_ends < max_count:
        # The common case: far fewer lines than the bound, nothing to walk.
        return raw if body or blank is None else raw[:end]
    cut, end, warning = cut_block(raw, 0, end, max_count, max_bytes)
    if warning is None:
        return raw if body or blank is None else raw[:end]
    warnings.append(warning)
    kept: list[bytes | memoryview] = [raw[:cut], *mime_fields(raw, cut, end, max_bytes)]
    if body and blank is not None and end == blank.start():
        # The body starts after the empty line, whatever was dropped before it.
        kept += [b"\r\n", memoryview(raw)[blank.end() :]]
    elif body and end < len(raw):
        kept.append(memoryview(raw)[end:])  # a header block ended by a non-header line
    return b"".join(kept)


def cut_block(
    raw: bytes, start: int, end: int, max_count: int, max_bytes: int
) -> tuple[int, int, str | None]:
    """Walk the field starts of the block from `start` to at most `end`: (where to cut, where
    the header block ends, why, or None when it fits)."""
    fields = 1
    kept = start  # the end of the last field within the bounds, its line break included
    for match in _FIELD_START.finditer(raw, start, end):
        if _HEADER_LINE.match(raw, match.end()) is None:
            # Not a header line: the stdlib starts the body here, the block is shorter.
            end = match.start()
            break
        if match.end() - start > max_bytes:
            return kept, end, _too_big(max_bytes, fields - 1)
        kept = match.end()
        fields += 1
        if fields > max_count:
            why = f"more than {max_count} header fields: the first {max_count} parsed"
            return kept, end, why + ", the rest skipped"
    if end - start > max_bytes:
        return kept, end, _too_big(max_bytes, fields - 1)
    return end, end, None


def _too_big(max_bytes: int, parsed: int) -> str:
    return f"header block larger than {max_bytes} bytes: {parsed} fields parsed, the rest skipped"


def mime_fields(raw: bytes, start: int, end: int, max_bytes: int) -> list[bytes]:
    """The first MIME-Version, Content-Type and Content-Transfer-Encoding between `start` and
    `end`, each ending in a line break; a field longer than `max_bytes` is left out."""
    found = []
    for field in _MIME_FIELDS:
        match = field.search(raw, start, end)
        if match is None:
            continue
        following = _FIELD_START.search(raw, match.end(), end)
        stop = following.start() if following is not None else end
        if stop - match.start() <= max_bytes:
            found.append(raw[match.start() : stop] + b"\r\n")
    return found
