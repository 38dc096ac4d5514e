"""Trimming the quoted history off an agent's answer before it is relayed (pure).

Agents answer notifications from their own mail client, which quotes the notification (and
with it the reply token, internal remarks, other customers' text). The customer gets only
what the agent wrote: everything from the first attribution line ("On … wrote:", Outlook's
"-----Original Message-----" or "From:" block) or from a trailing block of "> " lines is left out.
The ticket keeps the agent's mail whole.
"""

from __future__ import annotations

import re

_ATTRIBUTION = re.compile(
    r"^(?:"
    r"On .{3,300}(?:wrote|writes):\s*"  # Gmail, Thunderbird, Apple Mail
    r"|Am .{3,300}schrieb .{1,200}:\s*"  # German clients
    r"|Le .{3,300}a écrit\s*:\s*"  # French clients
    r"|-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}\s*"
    r"|_{10,}\s*"  # Outlook's rule above the quoted header block
    r")$",
    re.IGNORECASE,
)
# Outlook quotes with a header block instead of an attribution line.
_OUTLOOK_FROM = re.compile(r"^(?:From|Von|De)\s*:\s*.+$", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^(?:Sent|Gesendet|Envoyé|Date|To|An|À)\s*:", re.IGNORECASE)


def trim_quoted(text: str) -> str:
    """`text` without the quoted history; the whole text when nothing of it would remain."""
    lines = text.splitlines()
    cut = _cut_at(lines)
    kept = "\n".join(lines[:cut]).rstrip()
    return kept if kept.strip() else text.rstrip()


def _cut_at(lines: list[str]) -> int:
    for n, line in enumerate(lines):
        stripped = line.strip()
        if _ATTRIBUTION.match(stripped):
            return n
        header_block = n + 1 < len(lines) and _OUTLOOK_NEXT.match(lines[n + 1].strip())
        if _OUTLOOK_FROM.match(stripped) and header_block:
            return n
    # No attribution: drop a trailing block of quoted (and blank) lines.
    end = len(lines)
    while end and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith(">")):
        end -= 1
    quoted_tail = any(line.lstrip().startswith(">") for line in lines[end:])
    return end if quoted_tail else len(lines)
