"""Row builders for the postmaster's writes: article MIME fields, attachments, history, trace.

Pure functions from parsed mail and decisions to the dicts `apply` and `respond` insert, so
that each table's row is spelled in one place (REFERENCE §12–§13 for the Znuny columns).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pytrs.parsers import ParsedMail
from pytrs.routing.decision import Action
from pytrs.schema import storable
from pytrs.schema.tables import article_data_mime_attachment
from pytrs.vocabulary import znuny
from pytrs.vocabulary.message_ids import message_id_md5

if TYPE_CHECKING:
    from pytrs.postmaster.apply import Planned
    from pytrs.responders.message import Composed

# Header fields are single lines (REFERENCE §12) and bounded so one absurd header cannot make
# the row unstorable.
FIELD_MAX = 100_000
_EXTENSION_MAX = 20  # longer than that, a "suffix" is part of the name


def audit(now: datetime) -> dict[str, Any]:
    return {"create_time": now, "create_by": 1, "change_time": now, "change_by": 1}


def header_field(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")[:FIELD_MAX]


def mime_row(mail: ParsedMail, article_id: int, now: datetime) -> dict[str, Any]:
    """The `article_data_mime` row of a received mail."""
    return {
        "article_id": article_id, "a_from": header_field(mail.from_),
        "a_reply_to": header_field(mail.reply_to), "a_to": header_field(mail.to),
        "a_cc": header_field(mail.cc), "a_bcc": "", "a_subject": header_field(mail.subject),
        "a_message_id": header_field(mail.message_id),
        "a_message_id_md5": message_id_md5(mail.message_id),
        "a_in_reply_to": header_field(mail.in_reply_to),
        "a_references": header_field(" ".join(mail.references)),
        "a_content_type": mail.content_type[:250], "a_body": mail.body,
        "incoming_time": epoch(now), "content_path": f"{now:%Y/%m/%d}", **audit(now),
    }  # fmt: skip


def sent_mime_row(composed: Composed, article_id: int | None, now: datetime) -> dict[str, Any]:
    """The `article_data_mime` row of a mail pytrs composed (an auto-response)."""
    c = composed
    return {
        "article_id": article_id, "a_from": c.from_, "a_reply_to": c.reply_to, "a_to": c.to,
        "a_cc": c.cc, "a_bcc": "", "a_subject": c.subject, "a_message_id": c.message_id,
        "a_message_id_md5": message_id_md5(c.message_id), "a_in_reply_to": c.in_reply_to,
        "a_references": c.references, "a_content_type": c.content_type, "a_body": c.body,
        "incoming_time": epoch(now), "content_path": f"{now:%Y/%m/%d}", **audit(now),
    }  # fmt: skip


def history_row(
    name: str, kind: str, ticket_id: int, article_id: int | None, queue_id: int, now: datetime
) -> dict[str, Any]:
    """A `ticket_history` row of type `kind` (a seeded Znuny history type name)."""
    return {
        "name": name[:200], "history_type_id": znuny.history_type_id(kind),
        "ticket_id": ticket_id, "article_id": article_id, "type_id": 1, "queue_id": queue_id,
        "owner_id": znuny.USER_ROOT, "priority_id": znuny.PRIORITY_NORMAL, "state_id": 1,
        **audit(now),
    }  # fmt: skip


def epoch(naive_utc: datetime) -> int:
    return int(naive_utc.replace(tzinfo=UTC).timestamp())


def attachment_rows(mail: ParsedMail, article_id: int, now: datetime) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if mail.safe_html is not None:
        # Znuny keeps the HTML body as an attachment named file-2 (REFERENCE §12). pytrs keeps
        # the sanitised HTML there, the one the web view may show; the original is in the raw
        # mail and can be rendered again with a newer sanitiser.
        html = mail.safe_html.encode("utf-8", "replace")
        rows.append(
            {
                "article_id": article_id, "filename": "file-2",
                "content_size": str(len(html)), "content_type": "text/html; charset=utf-8",
                "content_id": "", "content_alternative": "1", "disposition": "inline",
                "content": html, **audit(now),
            }
        )  # fmt: skip
    seen: dict[str, int] = {}
    for part in mail.attachments:
        name = _unique_filename(part.filename or "file", seen)
        rows.append(
            {
                "article_id": article_id, "filename": name,
                "content_size": str(len(part.content)), "content_type": part.content_type[:450],
                "content_id": part.content_id[:250],
                "content_alternative": "1" if part.content_alternative else "",
                "disposition": part.disposition, "content": part.content, **audit(now),
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


def trace(plan: Planned, notes: list[str]) -> dict[str, Any]:
    d = plan.decision
    trace: dict[str, Any] = {
        "action": d.action.value,
        "queue": d.queue,
        "ticket": plan.tn or (d.ticket.tn if d.ticket else ""),
        "followup_via": d.followup_via,
        "reopen": d.reopen,
        "reasons": [*d.reasons, *notes],
        "warnings": list(plan.mail.warnings),
        "classification": classification(plan.mail),
        "rules": [
            {"rule": hit.rule, "matched": [list(m) for m in hit.matched]} for hit in plan.rule_hits
        ],
        "control": plan.control,
    }
    if d.action is Action.NEW_TICKET and d.ticket is not None:
        trace["linked_ticket"] = d.ticket.tn
    if d.internal:
        trace["review"] = True
    if d.own_address:
        trace["own_address"] = d.own_address  # claimed by mail from outside
    if d.new_state:
        trace["new_state"] = d.new_state
    if d.external is not None:
        trace["external_number"] = {"rule": d.external.rule, "value": d.external.value}
    return trace


def classification(mail: ParsedMail) -> dict[str, Any]:
    """What the parser recognised, for the trace (responders act on the same flags)."""
    found: dict[str, Any] = {
        name: True
        for name in ("is_auto_reply", "is_out_of_office", "is_list", "loop")
        if getattr(mail, name)
    }
    if mail.bounce is not None:
        b = mail.bounce
        found["bounce"] = {
            "recipient": b.recipient, "status": b.status, "permanent": b.permanent,
            "original_message_id": b.original_message_id, "format": b.format,
        }  # fmt: skip
    return found
