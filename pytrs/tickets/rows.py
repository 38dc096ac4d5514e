"""Row builders for ticket writes: tickets, articles, MIME fields, raw mail, attachments,
history and links (pure).

Both the service's single changes and the postmaster's batches build their rows here, so that
each table's row is spelled in one place (REFERENCE §12–§13 for the Znuny columns). Inputs are
the service's own values (`ArticleInput`, `HistoryEntry`); `article_input` turns a parsed mail
into one, `sent_input` a mail pytrs composed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pytrs.parsers import ParsedMail
from pytrs.responders.message import Composed
from pytrs.schema import storable
from pytrs.schema.tables import article_data_mime_attachment
from pytrs.tickets.model import ArticleAttachment, ArticleInput, HistoryEntry
from pytrs.vocabulary import znuny
from pytrs.vocabulary.message_ids import message_id_md5

# Header fields are single lines (REFERENCE §12) and bounded so one absurd header cannot make
# the row unstorable.
FIELD_MAX = 100_000
_EXTENSION_MAX = 20  # longer than that, a "suffix" is part of the name

SENDER_TYPES = {name: i for i, name in znuny.SENDER_TYPES}
CHANNELS = {"email": 1, "phone": 2, "internal": 3, "chat": 4}


def audit(now: datetime, by: int = znuny.USER_ROOT) -> dict[str, Any]:
    return {"create_time": now, "create_by": by, "change_time": now, "change_by": by}


def header_field(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")[:FIELD_MAX]


def epoch(naive_utc: datetime) -> int:
    return int(naive_utc.replace(tzinfo=UTC).timestamp())


def article_input(mail: ParsedMail, raw: bytes, *, sender: str, visible: bool) -> ArticleInput:
    """A received mail as the article it becomes."""
    return ArticleInput(
        sender=sender, visible=visible, from_=mail.from_, to=mail.to, cc=mail.cc,
        subject=mail.subject, body=mail.body, raw=raw, reply_to=mail.reply_to,
        message_id=mail.message_id, in_reply_to=mail.in_reply_to,
        references=" ".join(mail.references), content_type=mail.content_type,
        html=mail.safe_html,
        attachments=[
            ArticleAttachment(a.filename, a.content_type, a.content, a.content_id,
                              a.disposition, a.content_alternative)
            for a in mail.attachments
        ],
    )  # fmt: skip


def sent_input(
    composed: Composed, *, sender: str, history_kind: str,
    attachments: Sequence[ArticleAttachment] = (),
) -> ArticleInput:  # fmt: skip
    """A mail pytrs composed (an answer, an auto-response) as the article it is stored as,
    with the files it carries."""
    c = composed
    return ArticleInput(
        sender=sender, visible=True, from_=c.from_, to=c.to, cc=c.cc, subject=c.subject,
        body=c.body, raw=c.raw, reply_to=c.reply_to, message_id=c.message_id,
        in_reply_to=c.in_reply_to, references=c.references, content_type=c.content_type,
        history_kind=history_kind, history_name=f"%%{', '.join(c.recipients)}",
        fingerprint=f"outbox-{c.message_id}"[:64], attachments=tuple(attachments),
    )  # fmt: skip


def ticket_row(values: dict[str, Any], now: datetime, by: int) -> dict[str, Any]:
    """A new `ticket` row: `values` (tn, title, queue, state …) plus Znuny's zero columns."""
    return {
        "type_id": 1, "timeout": 0, "until_time": 0, "escalation_time": 0,
        "escalation_update_time": 0, "escalation_response_time": 0,
        "escalation_solution_time": 0, "archive_flag": 0, **values, **audit(now, by),
    }  # fmt: skip


def article_row(
    ticket_id: int, content: ArticleInput, fingerprint: str, now: datetime, by: int
) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id, "article_sender_type_id": SENDER_TYPES[content.sender],
        "communication_channel_id": CHANNELS[content.channel],
        "is_visible_for_customer": int(content.visible), "search_index_needs_rebuild": 1,
        "insert_fingerprint": (content.fingerprint or fingerprint)[:64], **audit(now, by),
    }  # fmt: skip


def mime_row(content: ArticleInput, article_id: int, now: datetime, by: int) -> dict[str, Any]:
    """The `article_data_mime` row of an article."""
    c = content
    return {
        "article_id": article_id, "a_from": header_field(c.from_),
        "a_reply_to": header_field(c.reply_to), "a_to": header_field(c.to),
        "a_cc": header_field(c.cc), "a_bcc": "", "a_subject": header_field(c.subject),
        "a_message_id": header_field(c.message_id),
        "a_message_id_md5": message_id_md5(c.message_id),
        "a_in_reply_to": header_field(c.in_reply_to),
        "a_references": header_field(c.references),
        "a_content_type": c.content_type[:250], "a_body": c.body,
        "incoming_time": epoch(now), "content_path": f"{now:%Y/%m/%d}", **audit(now, by),
    }  # fmt: skip


def plain_row(article_id: int, raw: bytes, now: datetime, by: int) -> dict[str, Any]:
    """The raw mail, byte for byte (`article_data_mime_plain`)."""
    return {"article_id": article_id, "body": raw, **audit(now, by)}


def history_row(entry: HistoryEntry, now: datetime, by: int = znuny.USER_ROOT) -> dict[str, Any]:
    """A `ticket_history` row of a seeded Znuny history type."""
    e = entry
    return {
        "name": e.name[:200], "history_type_id": znuny.history_type_id(e.kind),
        "ticket_id": e.ticket_id, "article_id": e.article_id, "type_id": e.type_id,
        "queue_id": e.queue_id, "owner_id": e.owner_id, "priority_id": e.priority_id,
        "state_id": e.state_id, **audit(now, by),
    }  # fmt: skip


def attachment_rows(
    content: ArticleInput, article_id: int, now: datetime, by: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if content.html is not None:
        # Znuny keeps the HTML body as an attachment named file-2 (REFERENCE §12). pytrs keeps
        # the sanitised HTML there, the one the web view may show; the original is in the raw
        # mail and can be rendered again with a newer sanitiser.
        html = content.html.encode("utf-8", "replace")
        rows.append(
            {
                "article_id": article_id, "filename": "file-2",
                "content_size": str(len(html)), "content_type": "text/html; charset=utf-8",
                "content_id": "", "content_alternative": "1", "disposition": "inline",
                "content": html, **audit(now, by),
            }
        )  # fmt: skip
    seen: dict[str, int] = {}
    for part in content.attachments:
        name = _unique_filename(part.filename or "file", seen)
        rows.append(
            {
                "article_id": article_id, "filename": name,
                "content_size": str(len(part.content)), "content_type": part.content_type[:450],
                "content_id": part.content_id[:250],
                "content_alternative": "1" if part.alternative else "",
                "disposition": part.disposition, "content": part.content, **audit(now, by),
            }
        )  # fmt: skip
    return rows


def _unique_filename(name: str, seen: dict[str, int]) -> str:
    """`name` made storable, with -1, -2 … for duplicates as in Znuny's storage.

    A name too long for its column loses the end of its stem, never its extension or the
    duplicate's suffix: the stem is shortened to make room for them.
    """
    name = storable.clean(name)
    stem, dot, ext = name.rpartition(".")
    if not (dot and stem) or len(ext) > _EXTENSION_MAX:
        stem, dot, ext = name, "", ""
    base = _fit(stem, dot + ext)
    if base not in seen:
        seen[base] = 0
        return base
    seen[base] += 1
    return _fit(stem, f"-{seen[base]}{dot}{ext}")


def _fit(stem: str, tail: str) -> str:
    limit = storable.column_limit(article_data_mime_attachment.c.filename) or 250
    return stem[: max(limit - len(tail), 0)] + tail
