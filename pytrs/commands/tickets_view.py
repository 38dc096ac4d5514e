"""How `pytrs tickets` and `pytrs queues` write times, ages and rows: for people and for JSON.

Ages read as Znuny shows them ("2 d 3 h", "3 h 5 m", "5 m"); times are UTC, ISO 8601 with a
`Z` in JSON. The JSON objects are built here from the query results, so one place fixes their
keys (the README shows them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pytrs.schema.database import utcnow
from pytrs.tickets.escalation_reads import TicketClocks
from pytrs.tickets.queries import ArticleView, HistoryEntry, QueueOverview, TicketDetail, TicketRow
from pytrs.vocabulary.moments import rfc3339
from pytrs.vocabulary.times import iso as iso  # shown as the web view shows them
from pytrs.vocabulary.times import when as when

_DAY, _HOUR, _MINUTE = 86400, 3600, 60
# Control characters other than tab and newline, C1 included: a mail's subject or body must
# not drive the terminal that shows it (escape sequences retitle windows, hide text …).
_CONTROLS = {code: "\ufffd" for code in [*range(0x20), *range(0x7F, 0xA0)] if code not in (9, 10)}


def shown(text: str) -> str:
    """Text from a mail made safe for a terminal: line ends as "\\n", every other control
    character as U+FFFD. JSON is left alone: it is read by programs, and escapes C0 itself."""
    return text.replace("\r\n", "\n").translate(_CONTROLS)


def age(seconds: float) -> str:
    """Znuny's short age: days and hours from one day on, hours and minutes from one hour on,
    else minutes ("0 m" for a ticket just made)."""
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, _DAY)
    hours, rest = divmod(rest, _HOUR)
    minutes = rest // _MINUTE
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} m"
    return f"{minutes} m"


def seconds_since(when: datetime, now: datetime | None = None) -> int:
    return int(((now or utcnow()) - when).total_seconds())


def working_left(seconds: int) -> str:
    """Working time left before a deadline, as an age; negative and marked once escalated
    ("-1 h 20 m escalated")."""
    return age(seconds) if seconds >= 0 else f"-{age(-seconds)} escalated"


def escalation_json(clocks: TicketClocks) -> dict[str, Any]:
    """The SLA, the pending time and each kind's clock; times as RFC 3339 UTC, null for none."""
    return {
        "sla": clocks.sla or None,
        "pending_until": rfc3339(clocks.pending_until),
        "escalation": {
            clock.kind: {
                "deadline": rfc3339(clock.deadline),
                "seconds_left": clock.seconds_left if clock.deadline else None,
                "escalated": clock.escalated,
            }
            for clock in clocks.clocks
        },
    }


def ticket_json(row: TicketRow, now: datetime) -> dict[str, Any]:
    return {
        "tn": row.tn,
        "id": row.id,
        "title": row.title,
        "queue": row.queue,
        "state": row.state,
        "state_type": row.state_type,
        "priority": row.priority,
        "customer_user": row.customer_user,
        "customer_id": row.customer_id,
        "owner": row.owner,
        "created": iso(row.created),
        "changed": iso(row.changed),
        "age": age(seconds_since(row.created, now)),
        "age_seconds": seconds_since(row.created, now),
    }


def detail_json(detail: TicketDetail, now: datetime) -> dict[str, Any]:
    """The list's fields of the ticket, then lock, type, responsible and the articles."""
    return {
        **ticket_json(detail.ticket, now),
        "lock": detail.lock,
        "type": detail.type,
        "responsible": detail.responsible,
        "merged_into": detail.merged_into or None,
        "articles": [article_json(a) for a in detail.articles],
    }


def article_json(item: ArticleView) -> dict[str, Any]:
    return {
        "id": item.id,
        "sender_type": item.sender_type,
        "channel": item.channel,
        "visible_for_customer": item.visible,
        "from": item.from_,
        "to": item.to,
        "cc": item.cc,
        "subject": item.subject,
        "message_id": item.message_id,
        "in_reply_to": item.in_reply_to,
        "created": iso(item.created),
        "body": item.body,
        "attachments": [
            {
                "name": a.name,
                "size": a.size,
                "content_type": a.content_type,
                "disposition": a.disposition,
            }
            for a in item.attachments
        ],
    }


def history_json(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "time": iso(entry.time),
        "type": entry.type,
        "name": entry.name,
        "who": entry.who,
        "article_id": entry.article_id,
    }


def queue_json(item: QueueOverview, now: datetime) -> dict[str, Any]:
    oldest = seconds_since(item.oldest_open, now) if item.oldest_open else None
    return {
        "queue": item.name,
        "addresses": list(item.addresses),
        "new": item.new,
        "open": item.open,
        "pending": item.pending,
        "oldest_open": iso(item.oldest_open),
        "oldest_open_age": age(oldest) if oldest is not None else None,
        "oldest_open_seconds": oldest,
    }
