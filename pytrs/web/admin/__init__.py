"""The admin pages: queues, addresses, agents, mail accounts, outbox, quarantine, filters,
answer templates and auto-responses, one module each (`index.py` lists them all).

Place in the flow: the top floor. Each page reads and writes through the repository or the stage
that owns the data, the same code the `pytrs` command line calls; what an admin types is checked
by the rules `pytrs config check` applies to the same values. The helpers here are the few steps
every admin form shares.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column
from starlette.requests import Request

from pytrs.config.errors import ErrorList
from pytrs.config.parse import build
from pytrs.schema import storable
from pytrs.vocabulary.times import when as when  # the admin pages' times


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form's text fields (an uploaded file is not a text field)."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def config_problem(cls: type, raw: dict[str, Any], key: str) -> str | None:
    """The first problem `pytrs config check` would name in `raw` as an entry `key` of type
    `cls` (one line: "queue.name: must not be empty"), or None."""
    errors = ErrorList()
    build(cls, raw, key, errors)
    return errors.messages[0] if errors.messages else None


def column_problem(label: str, column: Column[Any], text: str) -> str | None:
    """Why `text` does not fit `column` (too long, NUL), said of `label`, or None."""
    found = storable.problem(column, text)
    return f"{label}: {found}" if found else None


def row_id(text: str) -> int | None:
    """A positive id typed or chosen in a form, or None."""
    return int(text) if text.isdigit() and 0 < int(text) < 2**31 else None
