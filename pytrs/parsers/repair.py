"""Raw-byte repair of a broken header block, used by `parse_mail` only after the parse failed.

Broken filters and mailers sometimes write a folded header's continuation line without the
leading whitespace. The `email` parser then takes that line as the start of the body, and every
header after it (often Subject, Message-ID, From) is lost to routing. When the parser reports
that defect and known header names follow the stray line, the line is re-indented so the mail
can be parsed again. Normal mail never pays for this.
"""

from __future__ import annotations

import re

_MAX_HEAD = 256 * 1024
# Any line end style, bare CRs included (old Mac mailers, some gateways).
_BLANK_LINE = re.compile(rb"\r?\n\r?\n|\r\r")
_HEADER_LINE = re.compile(rb"[!-9;-~]+:")
# Names that make it safe to say "the header block goes on": a body that merely lacks its
# separating blank line rarely has lines starting like these.
_KNOWN_HEADER = re.compile(
    rb"(?:x-|list-|content-|resent-|arc-|dkim-|authentication-results"
    rb"|subject|from|to|cc|bcc|date|message-id|mime-version|received|return-path|reply-to"
    rb"|in-reply-to|references|sender|delivered-to|user-agent|thread-)[!-9;-~]*:",
    re.IGNORECASE,
)


def rejoin_stray_header_lines(raw: bytes) -> bytes | None:
    """Return `raw` with colon-less header lines turned into continuations, or None if unchanged.

    Only lines followed (within the header block) by a line with a well-known header name are
    touched; anything after the last such line is left to be the body.
    """
    blank = _BLANK_LINE.search(raw, 0, _MAX_HEAD)
    head_end = blank.start() if blank else min(len(raw), _MAX_HEAD)
    lines = raw[:head_end].splitlines(keepends=True)
    last_known = max((i for i, line in enumerate(lines) if _KNOWN_HEADER.match(line)), default=-1)
    changed = False
    for index in range(1, last_known):
        line = lines[index]
        if line[:1] in (b" ", b"\t") or _HEADER_LINE.match(line) or not line.strip():
            continue
        lines[index] = b" " + line
        changed = True
    return b"".join(lines) + raw[head_end:] if changed else None
