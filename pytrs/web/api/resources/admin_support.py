"""What the admin resources (users, filters, inbox, outbox) share: their keyset cursors and
the one-field validation problem an operation raises after the framework validated the
request.

Place in the flow: beside the resources, below none of them. A cursor is opaque to clients:
the last key of a page (a login, an address, an id), so the next page starts after it whatever
was added or removed meanwhile.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from pytrs.schema import storable
from pytrs.web.api.bodies import INT_MAX, invalid
from pytrs.web.api.paging import bad_cursor
from pytrs.web.api.problems import Problem

K = TypeVar("K", int, str)
R = TypeVar("R")


def page_of(
    rows: Sequence[R], limit: int, key: Callable[[R], int | str]
) -> tuple[list[R], str | None]:
    """The first `limit` of `rows` (read as `limit + 1`, so that one more says there is a next
    page) and the cursor of that next page, or None on the last."""
    page = list(rows[:limit])
    more = len(rows) > limit and page
    return page, next_cursor(key(page[-1])) if more else None


def next_cursor(key: int | str) -> str:
    """The opaque cursor of the page after the one that ended at `key`."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def read_cursor(cursor: str | None, kind: type[K]) -> K | None:
    """The key a cursor carries (None for the first page); 422 for a cursor this listing did
    not give."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise bad_cursor() from None
    if not isinstance(key, kind) or isinstance(key, bool) or not _storable(key):
        raise bad_cursor()
    return key


def _storable(key: int | str) -> bool:
    return 0 < key <= INT_MAX if isinstance(key, int) else storable.clean(key) == key


def field_problem(field: str, message: str, slug: str = "validation-failed") -> Problem:
    """A 422 naming one field of the request body, as the framework's own (`slug` for a rule
    that no schema can say, such as "give exactly one of these")."""
    return body_problem([{"field": field, "message": message}], slug)


def body_problem(errors: list[dict[str, str]], slug: str = "validation-failed") -> Problem:
    """A 422 listing `errors` ({"field", "message"}) of the request body, with the framework's
    detail and shape, under `slug`."""
    found = invalid("body", errors)
    return Problem(422, slug, found.detail, **found.extra)
