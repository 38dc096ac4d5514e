"""From Znuny's rows to pytrs's: ids translated, columns picked, nothing read or written.

Place in the flow: between the reader (`znuny_source`) and the writers. `Ids` holds, per kind
of row, which id here each Znuny id became (the same id where it was free, the id of the row of
the same name where pytrs had one). The builders are pure functions of a source row and the
`Ids`, so what an import would write is decided here alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from itertools import groupby
from typing import Any

from pytrs.routing.ticket_number import TicketNumberGenerator
from pytrs.vocabulary.filter_rules import MatchRow, Rule, SetRow

Row = dict[str, Any]

SYSTEM_USER = 1
_AUDIT = ("create_time", "create_by", "change_time", "change_by")


class Ids:
    """Znuny id → id here, per kind (a table name: "queue", "users", "ticket_state" …)."""

    def __init__(self, *, dry_run: bool = False) -> None:
        self._maps: dict[str, dict[int, int]] = defaultdict(dict)
        self.dry_run = dry_run  # the rows mapped to will be rolled back

    def put(self, kind: str, source: int, target: int) -> None:
        self._maps[kind][int(source)] = int(target)

    def has(self, kind: str, source: int | None) -> bool:
        return source is not None and int(source) in self._maps[kind]

    def get(self, kind: str, source: int | None, default: int | None = None) -> int | None:
        if source is None:
            return default
        return self._maps[kind].get(int(source), default)

    def need(self, kind: str, source: int) -> int:
        """The id here; KeyError when the source row was not mapped (the caller skips)."""
        found = self._maps[kind].get(int(source))
        if found is None:
            raise KeyError(f"{kind} {source}")
        return found

    def user(self, source: int | None) -> int:
        """An agent column (`create_by`, an owner): agents not copied become the system user."""
        return self.get("users", source, SYSTEM_USER) or SYSTEM_USER


def audit(row: Row, ids: Ids) -> Row:
    """Znuny's create/change columns, the agents mapped."""
    return {
        "create_time": row["create_time"],
        "create_by": ids.user(row.get("create_by")),
        "change_time": row["change_time"],
        "change_by": ids.user(row.get("change_by")),
    }


def queue_row(src: Row, ids: Ids) -> Row:
    """A queue (its system address is set once the addresses are there)."""
    copied: tuple[str, ...] = (
        "name",
        "unlock_timeout",
        "first_response_time",
        "first_response_notify",
    )
    copied += ("update_time", "update_notify", "solution_time", "solution_notify")
    copied += ("calendar_name", "default_sign_key", "follow_up_lock", "comments", "valid_id")
    return (
        {name: src[name] for name in copied}
        | {
            "group_id": ids.need("permission_groups", src["group_id"]),
            "follow_up_id": ids.need("follow_up_possible", src["follow_up_id"]),
            # pytrs has no salutations or signatures (its answers are templates).
            "salutation_id": None,
            "signature_id": None,
            "system_address_id": None,
        }
        | audit(src, ids)
    )


def address_row(src: Row, ids: Ids) -> Row:
    copied: tuple[str, ...] = ("value0", "value1", "value2", "value3", "comments", "valid_id")
    return (
        {name: src[name] for name in copied}
        | {"queue_id": ids.need("queue", src["queue_id"])}
        | audit(src, ids)
    )


def agent_row(src: Row, email: str | None, ids: Ids) -> Row:
    """An agent. Znuny's password hash is not copied: pytrs verifies argon2id only, and Znuny
    stores SHA-2 or bcrypt hashes; agents set a password with `pytrs users passwd`."""
    copied: tuple[str, ...] = ("login", "title", "first_name", "last_name", "valid_id")
    return {name: src[name] for name in copied} | {"pw": "", "email": email} | audit(src, ids)


def customer_row(src: Row, ids: Ids) -> Row:
    copied: tuple[str, ...] = (
        "login",
        "email",
        "customer_id",
        "title",
        "first_name",
        "last_name",
        "phone",
    )
    copied += ("fax", "mobile", "street", "zip", "city", "country", "comments", "valid_id")
    return {name: src[name] for name in copied} | {"pw": None} | audit(src, ids)


def field_row(src: Row, ids: Ids) -> Row:
    copied: tuple[str, ...] = (
        "internal_field",
        "name",
        "label",
        "field_order",
        "field_type",
        "object_type",
    )
    return (
        {name: src[name] for name in copied}
        | {
            # A LONGBLOB: bytes on MySQL, text on PostgreSQL.
            "config": src["config"].decode() if isinstance(src["config"], bytes) else src["config"],
            "valid_id": src["valid_id"],
        }
        | audit(src, ids)
    )


def response_row(src: Row, body: str, subject: str, ids: Ids) -> Row:
    """An auto response, its texts already translated into pytrs's template language.
    Znuny's responses have no language (Znuny picks them per queue); they become "en"."""
    return {
        "name": src["name"],
        "text0": body,
        "text1": subject,
        "type_id": ids.need("auto_response_type", src["type_id"]),
        "system_address_id": ids.need("system_address", src["system_address_id"]),
        "content_type": src["content_type"],
        "comments": src["comments"],
        "language": "en",
        "valid_id": src["valid_id"],
    } | audit(src, ids)


def ticket_row(src: Row, ids: Ids) -> Row:
    """A ticket, its id still Znuny's (the writer decides whether it stays)."""
    copied: tuple[str, ...] = (
        "id",
        "tn",
        "title",
        "customer_id",
        "customer_user_id",
        "timeout",
        "until_time",
    )
    copied += ("escalation_time", "escalation_update_time", "escalation_response_time")
    copied += ("escalation_solution_time", "archive_flag")
    return (
        {name: src[name] for name in copied}
        | {
            "queue_id": ids.need("queue", src["queue_id"]),
            "ticket_lock_id": ids.need("ticket_lock_type", src["ticket_lock_id"]),
            "type_id": ids.get("ticket_type", src["type_id"]),
            # pytrs provisions its SLAs and services from its configuration; Znuny's are not copied.
            "service_id": None,
            "sla_id": None,
            "user_id": ids.user(src["user_id"]),
            "responsible_user_id": ids.user(src["responsible_user_id"]),
            "ticket_priority_id": ids.need("ticket_priority", src["ticket_priority_id"]),
            "ticket_state_id": ids.need("ticket_state", src["ticket_state_id"]),
        }
        | audit(src, ids)
    )


def article_row(src: Row, ids: Ids) -> Row:
    return {
        "id": src["id"],
        "ticket_id": src["ticket_id"],
        "article_sender_type_id": ids.need("article_sender_type", src["article_sender_type_id"]),
        "communication_channel_id": ids.need(
            "communication_channel", src["communication_channel_id"]
        ),
        "is_visible_for_customer": src["is_visible_for_customer"],
        "search_index_needs_rebuild": 1,
        "insert_fingerprint": src["insert_fingerprint"],
    } | audit(src, ids)


_MIME: tuple[str, ...] = (
    "a_from",
    "a_reply_to",
    "a_to",
    "a_cc",
    "a_bcc",
    "a_subject",
    "a_message_id",
)
_MIME += ("a_message_id_md5", "a_in_reply_to", "a_references", "a_content_type", "a_body")
_MIME += ("incoming_time", "content_path")


def mime_row(src: Row, ids: Ids) -> Row:
    return {name: src[name] for name in _MIME} | audit(src, ids)


def plain_row(src: Row, body: bytes, ids: Ids) -> Row:
    return {"body": body} | audit(src, ids)


def attachment_row(src: Row, content: bytes, ids: Ids) -> Row:
    copied: tuple[str, ...] = ("filename", "content_size", "content_type", "content_id")
    copied += ("content_alternative", "disposition")
    return {name: src[name] for name in copied} | {"content": content} | audit(src, ids)


def history_row(src: Row, ticket_id: int, ids: Ids) -> Row:
    """A history entry as Znuny recorded it; queue, state, priority and type ids mapped (an id
    the mapping lacks — a queue since deleted in Znuny — stays as recorded)."""
    return {
        "name": src["name"],
        "history_type_id": ids.need("ticket_history_type", src["history_type_id"]),
        "ticket_id": ticket_id,
        "article_id": src["article_id"],
        "type_id": ids.get("ticket_type", src["type_id"], src["type_id"]),
        "queue_id": ids.get("queue", src["queue_id"], src["queue_id"]),
        "owner_id": ids.user(src["owner_id"]),
        "priority_id": ids.get("ticket_priority", src["priority_id"], src["priority_id"]),
        "state_id": ids.get("ticket_state", src["state_id"], src["state_id"]),
    } | audit(src, ids)


def value_row(src: Row, ids: Ids) -> Row:
    """A dynamic field value; its `object_id` is set by the writer."""
    return {
        "field_id": ids.need("dynamic_field", src["field_id"]),
        "object_id": src["object_id"],
        "value_text": src["value_text"],
        "value_date": src["value_date"],
        "value_int": src["value_int"],
    }


def filter_rules(rows: Iterable[Row]) -> list[Rule]:
    """Znuny's `postmaster_filter` rows grouped by filter name into pytrs's rules, rows in
    Znuny's order (type, key, value); the stop flag is set when any row of the filter has it."""
    ordered = sorted(rows, key=lambda r: (r["f_name"], r["f_type"], r["f_key"], r["f_value"]))
    rules = []
    for name, group in groupby(ordered, key=lambda r: r["f_name"]):
        members = list(group)
        rules.append(
            Rule(
                name=name,
                match=tuple(
                    MatchRow(r["f_key"], r["f_value"], bool(r["f_not"]))
                    for r in members
                    if r["f_type"] == "Match"
                ),
                set=tuple(
                    SetRow(r["f_key"], r["f_value"]) for r in members if r["f_type"] == "Set"
                ),
                stop=any(bool(r["f_stop"]) for r in members),
            )
        )
    return rules


def counter_after(numbers: Sequence[str], generator: TicketNumberGenerator, today: date) -> int:
    """The highest counter `generator` would have used for any of `numbers` in today's scope
    (every day's for a generator that never restarts): pytrs's counter must start past it."""
    sid = generator.system_id
    highest = 0
    for tn in numbers:
        digits: str | None = None
        if generator.name == "AutoIncrement" and tn.startswith(sid):
            digits = tn[len(sid) :]
        elif generator.daily() and tn.startswith(f"{today:%Y%m%d}{sid}"):
            digits = tn[8 + len(sid) :]
            if generator.name == "DateChecksum":
                digits = digits[:-1]  # the check digit
        if digits and digits.isdigit():
            highest = max(highest, int(digits))
    return highest
