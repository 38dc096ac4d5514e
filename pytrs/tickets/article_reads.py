"""Reading what an article keeps beside its text, for people: the sanitised HTML body, the
attachments (listed and one by one), the inline images, and the routing trace of the mail.

Place in the flow: read-only, beside `tickets.queries` (which lists a ticket with its
articles); the web view's ticket zoom and attachment download call these. The HTML body is
the parser's sanitised HTML, stored as the article's `file-2` attachment (`tickets.rows`):
the only HTML of a mail anything may show. The routing trace is the JSON the postmaster kept
on the inbox row that became the article, found through the indexed Message-ID.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema.shape import shape_of
from pytrs.schema.tables import (
    article,
    article_data_mime,
    article_data_mime_attachment,
    article_data_mime_plain,
    inbox,
)

_part = article_data_mime_attachment
_PART, _PLAIN = "article_data_mime_attachment", "article_data_mime_plain"
# Inline (cid:) images small enough to be written into the page as data: URLs; others show
# as attachments only. Raster types alone: an SVG is a document, not a picture.
INLINE_IMAGE_BYTES = 512 * 1024
INLINE_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def is_html_body(filename: str | None, content_type: str | None, alternative: str | None) -> bool:
    """Whether an attachment row is the article's stored (sanitised) HTML body."""
    return (
        filename == "file-2" and (content_type or "").startswith("text/html") and alternative == "1"
    )


async def html_bodies(conn: AsyncConnection, article_ids: Collection[int]) -> dict[int, str]:
    """The sanitised HTML body of each article that has one, by article id."""
    if not article_ids:
        return {}
    rows = await conn.execute(
        select(_part.c.article_id, _part.c.content, _part.c.content_type,
               _part.c.content_alternative)
        .where(_part.c.article_id.in_(list(article_ids)), _part.c.filename == "file-2")
        .order_by(_part.c.id)
    )  # fmt: skip
    found: dict[int, str] = {}
    stored = shape_of(conn).stored_bytes
    for r in rows:
        if is_html_body("file-2", r.content_type, r.content_alternative):
            html = stored(_PART, "content", r.content) or b""
            found.setdefault(int(r.article_id), html.decode("utf-8", "replace"))
    return found


@dataclass(frozen=True, slots=True)
class Listed:
    """An attachment as a list shows it (no content); `number` as in `attachment`."""

    number: int
    filename: str
    content_type: str
    size: int
    content_id: str


async def attachment_lists(
    conn: AsyncConnection, article_ids: Collection[int]
) -> dict[int, list[Listed]]:
    """Each article's attachments (the HTML body left out), numbered from 1, by article id."""
    if not article_ids:
        return {}
    rows = await conn.execute(
        select(_part.c.article_id, _part.c.filename, _part.c.content_type, _part.c.content_size,
               _part.c.content_alternative, _part.c.content_id)
        .where(_part.c.article_id.in_(list(article_ids)))
        .order_by(_part.c.id)
    )  # fmt: skip
    found: dict[int, list[Listed]] = {}
    for r in rows:
        if is_html_body(r.filename, r.content_type, r.content_alternative):
            continue
        listed = found.setdefault(int(r.article_id), [])
        size = int(r.content_size) if (r.content_size or "").isdigit() else 0
        listed.append(
            Listed(len(listed) + 1, r.filename or "", r.content_type or "", size,
                   r.content_id or "")
        )  # fmt: skip
    return found


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One attachment with its content; `number` counts the article's attachments from 1
    (the HTML body left out), as the zoom lists them."""

    ticket_id: int
    article_id: int
    number: int
    filename: str
    content_type: str
    content_id: str
    content: bytes


async def attachment(conn: AsyncConnection, article_id: int, number: int) -> StoredFile | None:
    """Attachment `number` of article `article_id`, or None when there is none."""
    if number < 1:
        return None
    rows = await conn.execute(
        select(article.c.ticket_id, _part.c.id, _part.c.filename, _part.c.content_type,
               _part.c.content_alternative, _part.c.content_id)
        .join(_part, _part.c.article_id == article.c.id)
        .where(article.c.id == article_id)
        .order_by(_part.c.id)
    )  # fmt: skip
    listed = [r for r in rows if not is_html_body(r.filename, r.content_type,
                                                  r.content_alternative)]  # fmt: skip
    if number > len(listed):
        return None
    r = listed[number - 1]
    content = await conn.execute(select(_part.c.content).where(_part.c.id == r.id))
    return StoredFile(
        ticket_id=int(r.ticket_id), article_id=article_id, number=number,
        filename=r.filename or "", content_type=r.content_type or "",
        content_id=r.content_id or "",
        content=shape_of(conn).stored_bytes(_PART, "content", content.scalar_one()) or b"",
    )  # fmt: skip


async def inline_images(
    conn: AsyncConnection, article_ids: Collection[int]
) -> dict[int, dict[str, tuple[str, bytes]]]:
    """Small raster images with a Content-ID, by article id and Content-ID (lower-cased,
    without <>): (type, bytes). Larger ones are left out (`INLINE_IMAGE_BYTES`)."""
    if not article_ids:
        return {}
    listed = await conn.execute(
        select(_part.c.id, _part.c.article_id, _part.c.content_id, _part.c.content_type,
               _part.c.content_size)
        .where(_part.c.article_id.in_(list(article_ids)), _part.c.content_id != "")
    )  # fmt: skip
    wanted: dict[int, tuple[int, str, str]] = {}  # part id → (article id, content id, type)
    for r in listed:
        kind = (r.content_type or "").split(";")[0].strip().lower()
        size = int(r.content_size) if (r.content_size or "").isdigit() else INLINE_IMAGE_BYTES
        key = (r.content_id or "").strip().strip("<>").strip().lower()
        if key and kind in INLINE_IMAGE_TYPES and size < INLINE_IMAGE_BYTES:
            wanted[int(r.id)] = (int(r.article_id), key, kind)
    found: dict[int, dict[str, tuple[str, bytes]]] = {}
    if not wanted:
        return found
    # Only the small images' bytes are read: a mail's big inline parts stay in the database.
    contents = await conn.execute(
        select(_part.c.id, _part.c.content).where(_part.c.id.in_(list(wanted)))
    )
    stored = shape_of(conn).stored_bytes
    for part_id, content in contents:
        article_id, key, kind = wanted[int(part_id)]
        found.setdefault(article_id, {})[key] = (kind, stored(_PART, "content", content) or b"")
    return found


async def routing_traces(
    conn: AsyncConnection, message_ids: Mapping[int, str]
) -> dict[int, dict[str, Any]]:
    """The routing trace of each article that came in by mail, by article id; `message_ids`
    maps the article ids to their Message-IDs (the inbox rows are found by that index)."""
    wanted = {i: m for i, m in message_ids.items() if m}
    if not wanted:
        return {}
    rows = await conn.execute(
        select(inbox.c.article_id, inbox.c.trace).where(
            and_(inbox.c.message_id.in_(sorted(set(wanted.values()))),
                 inbox.c.article_id.in_(list(wanted)))
        )
    )  # fmt: skip
    found: dict[int, dict[str, Any]] = {}
    for r in rows:
        try:
            value = json.loads(r.trace or "")
        except ValueError:
            continue
        if isinstance(value, dict):
            found[int(r.article_id)] = value
    return found


async def message_ids(conn: AsyncConnection, article_ids: Collection[int]) -> dict[int, str]:
    """The Message-ID of each article, by id."""
    if not article_ids:
        return {}
    rows = await conn.execute(
        select(article_data_mime.c.article_id, article_data_mime.c.a_message_id).where(
            article_data_mime.c.article_id.in_(list(article_ids))
        )
    )
    return {int(r.article_id): r.a_message_id or "" for r in rows}


async def raw_heads(
    conn: AsyncConnection, article_ids: Collection[int], head_bytes: int
) -> dict[int, bytes]:
    """The first `head_bytes` of each stored raw mail among `article_ids` (its header block,
    for the mail's path), without reading whole mails of many megabytes."""
    if not article_ids:
        return {}
    shape = shape_of(conn)
    chars = shape.head_chars(_PLAIN, "body", head_bytes)
    rows = await conn.execute(
        select(
            article_data_mime_plain.c.article_id,
            func.substr(article_data_mime_plain.c.body, 1, chars),
        ).where(article_data_mime_plain.c.article_id.in_(list(article_ids)))
    )
    return {
        int(i): (shape.stored_bytes(_PLAIN, "body", head) or b"")[:head_bytes] for i, head in rows
    }


async def stored_raw(conn: AsyncConnection, article_ids: Collection[int]) -> set[int]:
    """The articles among `article_ids` that keep their raw mail."""
    if not article_ids:
        return set()
    rows = await conn.execute(
        select(article_data_mime_plain.c.article_id).where(
            article_data_mime_plain.c.article_id.in_(list(article_ids))
        )
    )
    return {int(i) for i in rows.scalars()}
