"""The stored-XSS corpus: hostile mails, one quirk each, as `.eml` files in `mails/`.

Every page that shows what mail brought in (ticket zoom, queue view, search) renders these
and must execute nothing: `hostile_mails()` gives them as (name, raw bytes), sorted by name,
for any test to ingest through the real mail path. Names say the trick (`03-javascript-urls`);
each mail's Subject starts with its name unless the subject is the trick itself.
"""

from __future__ import annotations

from pathlib import Path

MAILS = Path(__file__).resolve().parent / "mails"


def hostile_mails() -> list[tuple[str, bytes]]:
    """Every hostile mail of the corpus as (name, raw bytes)."""
    return [(path.stem, path.read_bytes()) for path in sorted(MAILS.glob("*.eml"))]
