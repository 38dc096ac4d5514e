"""The one place Znuny `ticket_history` entries are spelled: type and name per change.

Every writer (the mail path, the service's single changes, merges, links, answers) builds its
history through these functions, so the same change reads the same in the history whoever
made it. Names are Znuny's `%%`-separated parameters (REFERENCE §13), cut to the column's 200
characters when the row is built (`tickets.rows.history_row`). Formats the mail path wrote
before this module existed are kept exactly; the others follow Znuny.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pytrs.tickets.model import HistoryEntry, TicketRecord


def entry(
    kind: str, name: str, ticket: TicketRecord, article_id: int | None = None
) -> HistoryEntry:
    """A history entry of `ticket` as it is at this step (Znuny records the ticket's queue,
    state, owner, priority and type on every row)."""
    return HistoryEntry(
        kind, name, ticket.id, ticket.queue_id, ticket.state_id, ticket.owner_id,
        ticket.priority_id, ticket.type_id or 1, article_id,
    )  # fmt: skip


def new_ticket(tn: str, queue: str, priority: str, state: str, ticket_id: int,
               instead_of: str = "") -> tuple[str, str]:  # fmt: skip
    """`NewTicket`; `instead_of` is the closed ticket a follow-up was opened instead of."""
    name = f"%%{tn}%%{queue}%%{priority}%%{state}%%{ticket_id}"
    return "NewTicket", name + (f"%%{instead_of}" if instead_of else "")


def follow_up(tn: str, rejected: bool = False) -> tuple[str, str]:
    return "FollowUp", f"%%{tn}" + ("%%Follow up rejected." if rejected else "")


def email(customer: bool) -> tuple[str, str]:
    """The first article of a ticket opened by mail."""
    return ("EmailCustomer" if customer else "EmailAgent"), "%%"


def state_update(old: str, new: str) -> tuple[str, str]:
    return "StateUpdate", f"%%{old}%%{new}%%"


def priority_update(new: str) -> tuple[str, str]:
    return "PriorityUpdate", f"%%%%{new}%%{new}"


def move(queue: str, queue_id: int) -> tuple[str, str]:
    return "Move", f"%%{queue}%%{queue_id}%%"


def owner_update(login: str, user_id: int) -> tuple[str, str]:
    return "OwnerUpdate", f"%%{login}%%{user_id}"


def responsible_update(login: str, user_id: int) -> tuple[str, str]:
    return "ResponsibleUpdate", f"%%{login}%%{user_id}"


def lock(new: str) -> tuple[str, str]:
    return ("Unlock" if new == "unlock" else "Lock"), f"%%{new}"


def title_update(new: str) -> tuple[str, str]:
    return "TitleUpdate", f"%%%%{new[:150]}"


def type_update(new: str, new_id: int, old: str, old_id: int) -> tuple[str, str]:
    return "TypeUpdate", f"%%{new}%%{new_id}%%{old}%%{old_id}"


def customer_update(customer_id: str, customer_user: str) -> tuple[str, str]:
    return "CustomerUpdate", f"%%CustomerID={customer_id};CustomerUser={customer_user};"


def add_note() -> tuple[str, str]:
    return "AddNote", "%%Note"


def sent(kind: str, recipients: Iterable[str]) -> tuple[str, str]:
    """`SendAnswer`, `SendAutoReply`, `SendAgentNotification` … to `recipients`."""
    return kind, f"%%{', '.join(recipients)}"


def merged(source_tn: str, source_id: int, target_tn: str, target_id: int) -> tuple[str, str]:
    """On both tickets; the target's id comes last, which is what `known_repo` follows."""
    return "Merged", f"%%{source_tn}%%{source_id}%%{target_tn}%%{target_id}"


def link_add(other_tn: str, other_id: int, kind: str = "Normal") -> tuple[str, str]:
    return "TicketLinkAdd", f"%%{other_tn}%%{other_id}%%{kind}"


def dynamic_field(name: str, value: str) -> tuple[str, str]:
    return "TicketDynamicFieldUpdate", f"%%FieldName%%{name}%%Value%%{value[:100]}"


def sla_update(name: str, sla_id: int | None) -> tuple[str, str]:
    """`SLAUpdate` (Znuny: `%%<name>%%<id>`; both empty when the SLA is cleared)."""
    return "SLAUpdate", f"%%{name}%%{sla_id or ''}"


def pending_time(until: int) -> tuple[str, str]:
    """`SetPendingTime` with Znuny's `%%YYYY-MM-DD HH:MM:SS` (UTC; `%%` alone when cleared)."""
    return "SetPendingTime", "%%" + (_utc(until) if until else "")


def escalation(history_type: str, deadline: int) -> tuple[str, str]:
    """An escalation event (`EscalationResponseTimeStart` …) about the deadline it names."""
    return history_type, f"%%{_utc(deadline)}"


def _utc(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def misc(text: str) -> tuple[str, str]:
    return "Misc", f"%%{text}"


def imported(source: str) -> tuple[str, str]:
    """`Misc`: the ticket was copied from another system (`pytrs import znuny`)."""
    return "Misc", f"%%Imported from {source}"
