"""Auto-responses as plain records: what `[[auto_responses]]` and `pytrs responses import`
define, the database stores and the responders compile.

`responders.responses` builds and checks a `ResponseSpec` (its templates compiled) before
`schema.response_repo` stores it; the repository adds what only the database can tell
(unknown queues, senders, types, clashes) to the same `ResponseError`, so an import names
every problem in one answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

TEXT_PLAIN = "text/plain"
TEXT_HTML = "text/html"
CONTENT_TYPES = (TEXT_PLAIN, TEXT_HTML)
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True, slots=True)
class ResponseSpec:
    """One auto-response as configured or imported, before it is stored.

    ``sender`` is a system address ("" = the first system address of the first queue);
    ``queues`` are queue names. Templates are sources (Jinja2).
    """

    name: str
    queues: tuple[str, ...]
    type: str
    subject: str
    body: str
    language: str = DEFAULT_LANGUAGE
    content_type: str = TEXT_PLAIN
    sender: str = ""
    valid: bool = True
    comments: str = ""


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a response is invalid, by response name and field."""

    response: str
    field: str
    why: str

    def __str__(self) -> str:
        return f"response {self.response}: {self.field}: {self.why}"


class ResponseError(ValueError):
    """One or more invalid responses; ``problems`` lists every one."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        # One problem per response and field: later checks of a field already found wrong
        # (a missing name, then an empty one) would only repeat it.
        unique: dict[tuple[str, str], Problem] = {}
        for problem in problems:
            unique.setdefault((problem.response, problem.field), problem)
        self.problems = tuple(unique.values())
        super().__init__("\n".join(str(p) for p in self.problems))


def stored_content_type(value: str | None) -> str:
    """The content type of a stored response: Znuny stores e.g. "text/plain; charset=utf-8",
    and only the type matters here."""
    kind = (value or TEXT_PLAIN).split(";")[0].strip().lower()
    return kind if kind in CONTENT_TYPES else kind or TEXT_PLAIN
