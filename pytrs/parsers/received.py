"""The path a mail took: its `Received:` chain read into hops, for the web view (pure).

Read when an agent looks at an article, from the head of the stored raw mail, never in the
worker's path. The clause parsing is mail-parser's (`mailparser.utils.receiveds_parsing`): it
reads the from/by/with/id/for/date clauses of the many Received styles MTAs write and the delay
between hops, which pytrs's own parser does not (docs/architecture.md, "The parser and
mail-parser"). A hop it cannot read keeps its raw text. Input is bounded: a hostile mail can add
hundreds of Received lines, or very long ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

MAX_HOPS = 40
MAX_RECEIVED_CHARS = 2000
# The header block of a mail is read from at most this much of its start.
HEAD_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Hop:
    """One `Received:` line, first hop first; fields the line did not have are ""."""

    number: int
    from_: str
    by: str
    with_: str
    id: str
    for_: str
    date_utc: str  # ISO 8601 in UTC, "" when the date could not be read
    delay_seconds: float | None  # since the previous hop; None for the first or unknown
    raw: str  # the line itself, when its clauses could not be read


def mail_path(raw: bytes) -> tuple[Hop, ...]:
    """The hops of `raw`'s Received chain (only the head of `raw` is read); never raises."""
    try:
        head = raw[:HEAD_BYTES].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        message = BytesHeaderParser(policy=compat32).parsebytes(head)
        values = [
            " ".join(str(v).split())[:MAX_RECEIVED_CHARS] for v in message.get_all("Received") or ()
        ]
        return _hops(values[:MAX_HOPS])
    except Exception:  # a display aid: a mail it cannot read shows no path
        return ()


def _hops(values: list[str]) -> tuple[Hop, ...]:
    if not values:
        return ()
    from mailparser.utils import receiveds_parsing  # only the web view needs it

    hops: list[Hop] = []
    for found in receiveds_parsing(values):
        delay = found.get("delay")
        hops.append(
            Hop(
                number=int(found.get("hop", len(hops) + 1)),
                from_=str(found.get("from", "")),
                by=str(found.get("by", "")),
                with_=str(found.get("with", "")),
                id=str(found.get("id", "")),
                for_=str(found.get("for", "")),
                date_utc=str(found.get("date_utc", "") or ""),
                delay_seconds=float(delay) if isinstance(delay, int | float) and hops else None,
                raw=str(found.get("raw", "")),
            )
        )
    return tuple(hops)
