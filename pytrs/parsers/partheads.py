"""The header block bound for every MIME part: each part's header block (and that of a message
attached as message/rfc822, and each block of a message/delivery-status) is counted and
measured in the raw bytes and cut like the top-level one (`headblock`), before the `email`
package builds a line string and a name/value pair for every one of its lines.

A part header block starts after a delimiter line of a boundary the mail declares, and after
the header block of a message/* part. Boundaries are found by their `boundary=` parameter
anywhere in the mail, as `mail._within_part_limit` finds them; a delimiter-like line in a
text body is taken for one too, which costs at most a cut of a run of more header-like lines
than the bounds allow. The caller keeps the raw mail whole; the parser works on the copy.
"""

from __future__ import annotations

import heapq
import re

from pytrs.parsers.headblock import cut_block, mime_fields

BOUNDARY_PARAM = re.compile(rb"""boundary\s*=\s*["']?([^"';\r\n]{1,70})""", re.IGNORECASE)
MAX_BOUNDARIES = 200
# Where a header block starting at a line ends, as feedparser decides it: at the first line
# break followed by a line that is neither a field nor its continuation (an empty line too).
_BLOCK_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?![ \t]|From |[\041-\071\073-\176]*:)")
_HEADER_LINE = re.compile(rb"From |[\041-\071\073-\176]*:|[\t ]")
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_CONTENT_TYPE = re.compile(rb"^content-type[ \t]*:[ \t]*([^\r\n;]*)", re.IGNORECASE | re.MULTILINE)


def declared_boundaries(raw: bytes) -> list[bytes]:
    """The boundaries the mail declares anywhere, longest first (a prefix must not win)."""
    found = {match.group(1) for match in BOUNDARY_PARAM.finditer(raw)}
    return sorted(found, key=len, reverse=True)[:MAX_BOUNDARIES]


def bound_part_header_blocks(
    raw: bytes, max_count: int, max_bytes: int, warnings: list[str]
) -> bytes:
    """Return `raw` with every part's header block cut to the bounds (`raw` itself if all fit).

    The top-level header block is expected to fit already (`bound_header_block`).
    """
    if raw.count(b"\n") + raw.count(b"\r") < max_count and len(raw) <= max_bytes:
        return raw  # no block of it can be over a bound
    # Each start says whether it is a block of a message/delivery-status (more may follow).
    starts: list[tuple[int, bool]] = [(0, False), *((s, False) for s in _part_starts(raw))]
    heapq.heapify(starts)
    kept: list[bytes | memoryview] = []
    done = 0  # raw[:done] is handled: copied to `kept` or dropped
    while starts:
        start, status_block = heapq.heappop(starts)
        if start < done or _HEADER_LINE.match(raw, start) is None:
            continue  # inside a block already handled, or an empty header block
        match = _BLOCK_END.search(raw, start)
        end = match.start() if match is not None else len(raw)
        after = _after_block(raw, end)
        content_type = _content_type(raw, start, end)
        if status_block or content_type == b"message/delivery-status":
            heapq.heappush(starts, (after, True))
        elif content_type.startswith(b"message/"):
            heapq.heappush(starts, (after, False))  # the attached message's own header block
        if end - start <= max_bytes and raw.count(b"\n", start, end) < max_count:
            continue
        cut, end, warning = cut_block(raw, start, end, max_count, max_bytes)
        if warning is None:
            continue
        warnings.append(f"MIME part: {warning}")
        kept += [memoryview(raw)[done:cut], *mime_fields(raw, cut, end, max_bytes)]
        # The dropped block's last line break goes too: the kept fields end in their own.
        line_break = _LINE_BREAK.match(raw, end)
        done = line_break.end() if line_break is not None else end
    if not kept:
        return raw
    kept.append(memoryview(raw)[done:])
    return b"".join(kept)


def _part_starts(raw: bytes) -> list[int]:
    """Where the header block of each part starts: after every (not closing) delimiter line."""
    boundaries = declared_boundaries(raw)
    if not boundaries:
        return []
    alternatives = b"|".join(map(re.escape, boundaries))
    delimiter = re.compile(rb"(?:^|(?<=[\r\n]))--(?:" + alternatives + rb")[ \t]*(?:\r\n|\r|\n)")
    return [match.end() for match in delimiter.finditer(raw)]


def _after_block(raw: bytes, end: int) -> int:
    """Where what follows a header block ending at `end` starts: past its empty line, if any."""
    after = _LINE_BREAK.match(raw, end)
    if after is None:
        return end
    blank = _LINE_BREAK.match(raw, after.end())
    return blank.end() if blank is not None else after.end()


def _content_type(raw: bytes, start: int, end: int) -> bytes:
    """The media type of the block's first Content-Type field, lower case ("" without one)."""
    match = _CONTENT_TYPE.search(raw, start, end)
    return match.group(1).strip().lower() if match is not None else b""
