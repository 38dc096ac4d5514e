"""Paging of API lists: `PageQuery` (limit, cursor) in, `Page[T]` (items, next_cursor) out.

Place in the flow: a list operation declares `query=` a subclass of `PageQuery` (adding its
filters) and `response=Page[Row]`; it passes `limit` and `cursor` to its keyset read (e.g.
tickets/listing.py) and returns the rows with the cursor of the next page (None on the last).
Cursors are opaque to clients; an invalid one is a 422 the operation raises (`bad_cursor`).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from pytrs.web.api.problems import Problem

T = TypeVar("T")
MAX_LIMIT = 100
DEFAULT_LIMIT = 25


class PageQuery(BaseModel):
    limit: int = Field(
        DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="How many items a page holds (1–100)."
    )
    cursor: str | None = Field(
        None, max_length=1000,
        description="Where to continue: the `next_cursor` of the previous page; absent for the first page.",  # noqa: E501
    )  # fmt: skip


class Page(BaseModel, Generic[T]):
    items: list[T] = Field(description="The items of this page, in the list's order.")
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; null on the last page."
    )


def bad_cursor() -> Problem:
    """422 for a cursor that is not one this list gave out."""
    message = "is not a cursor of this list; start again without it"
    detail = "The cursor is not one this list gave out; request the first page again without it."
    error = {"location": "query", "field": "cursor", "message": message}
    return Problem(422, "validation-failed", detail, errors=[error])
