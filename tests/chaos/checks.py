"""The chaos test's reading of the end state: what the database and the relay hold, and every
way it differs from what the clients were told (an empty list when nothing is wrong).

Each check returns lines a person can act on ("<chaos-00-00017@…>: 2 articles"), at most a
few of each kind, so that a failure says what went wrong without a wall of text.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

from sqlalchemy import text

from pytrs.schema.database import Database

from ..servers.relay import Received
from .mta import Letter

SHOWN = 5  # examples shown per kind of problem
WARNED, ESCALATED = "EscalationResponseTimeNotifyBefore", "EscalationResponseTimeStart"


@dataclass
class EndState:
    """The database after the run, read once the daemons have stopped."""

    articles: dict[str, list[int]]  # Message-ID → the tickets of its articles
    titles: Counter[str]  # ticket title → tickets with it
    numbers: Counter[str]  # ticket number → tickets with it
    tickets: set[int]
    inbox: Counter[str]  # state → rows
    outbox: Counter[str]  # state → rows
    outbox_rows: list[tuple[int, str, str]]  # (ticket id, kind, Message-ID)
    history: dict[int, Counter[str]] = field(default_factory=dict)  # ticket → type → entries
    stages: dict[int, int] = field(default_factory=dict)  # ticket → first response stage

    @classmethod
    async def read(cls, db: Database) -> EndState:
        async with db.connect() as conn:

            async def rows(sql: str) -> list[Any]:
                return list(await conn.execute(text(sql)))

            articles: dict[str, list[int]] = defaultdict(list)
            for message_id, ticket_id in await rows(
                "SELECT m.a_message_id, a.ticket_id FROM article a "
                "JOIN article_data_mime m ON m.article_id = a.id"
            ):
                articles[message_id or ""].append(int(ticket_id))
            tickets = await rows("SELECT id, title, tn FROM ticket")
            history: dict[int, Counter[str]] = defaultdict(Counter)
            for ticket_id, kind, count in await rows(
                "SELECT h.ticket_id, t.name, count(*) FROM ticket_history h "
                "JOIN ticket_history_type t ON t.id = h.history_type_id "
                "GROUP BY h.ticket_id, t.name"
            ):
                history[int(ticket_id)][kind] = int(count)
            return cls(
                articles=dict(articles),
                titles=Counter(title for _id, title, _tn in tickets),
                numbers=Counter(tn for _id, _title, tn in tickets),
                tickets={int(ticket_id) for ticket_id, _title, _tn in tickets},
                inbox=Counter(dict(await rows(
                    "SELECT state, count(*) FROM inbox_message GROUP BY state"))),
                outbox=Counter(dict(await rows(
                    "SELECT state, count(*) FROM outbox_message GROUP BY state"))),
                outbox_rows=[(int(t or 0), k, m) for t, k, m in await rows(
                    "SELECT ticket_id, kind, message_id FROM outbox_message")],
                history=dict(history),
                stages={int(t): int(s) for t, s in await rows(
                    "SELECT ticket_id, response_stage FROM ticket_escalation")},
            )  # fmt: skip


def _first(problems: Iterable[str], what: str) -> list[str]:
    found = list(problems)
    if len(found) > SHOWN:
        return [*found[:SHOWN], f"… {len(found) - SHOWN} more {what}"]
    return found


def mail_problems(state: EndState, letters: Sequence[Letter]) -> list[str]:
    """Every letter is one article, on its parent's ticket if it follows one up; every new
    letter opened one ticket; nothing else became an article or a ticket."""
    problems: list[str] = []
    by_id = {letter.message_id: letter for letter in letters}
    counts = {m: len(state.articles.get(m, [])) for m in by_id}
    problems += _first((f"{m}: {n} articles" for m, n in counts.items() if n != 1), "letters")
    strays = [m for m, t in state.articles.items() if m and m not in by_id and len(t) > 1]
    problems += _first((f"{m}: {len(state.articles[m])} articles" for m in strays), "strays")
    moved = [
        letter.message_id for letter in letters
        if letter.parent and counts[letter.message_id] == 1
        and state.articles[letter.message_id] != state.articles.get(letter.parent)
    ]  # fmt: skip
    problems += _first((f"{m}: not on its parent's ticket" for m in moved), "follow-ups")
    roots = [letter for letter in letters if not letter.parent]
    twice = [t for t, n in state.titles.items() if n > 1]
    problems += _first((f"ticket {t!r} opened {state.titles[t]} times" for t in twice), "titles")
    again = [n for n, count in state.numbers.items() if count > 1]
    problems += _first(
        (f"ticket number {n} given {state.numbers[n]} times" for n in again), "numbers"
    )
    if len(state.tickets) != len(roots):
        problems.append(f"{len(state.tickets)} tickets for {len(roots)} new letters")
    return problems


def queue_problems(state: EndState) -> list[str]:
    """Nothing left in the inbox or the outbox, nothing quarantined, nothing failed."""
    problems = []
    if set(state.inbox) != {"done"}:
        problems.append(f"inbox rows by state: {dict(state.inbox)} (all should be done)")
    if set(state.outbox) != {"sent"}:
        problems.append(f"outbox rows by state: {dict(state.outbox)} (all should be sent)")
    return problems


def escalation_problems(state: EndState, agents: int) -> list[str]:
    """Per ticket: the auto-reply queued once, the warning and the escalation of its first
    response fired once each (history), with one notification per agent each (outbox)."""
    kinds: dict[int, Counter[str]] = defaultdict(Counter)
    for ticket_id, kind, _message_id in state.outbox_rows:
        kinds[ticket_id][kind] += 1
    problems = []
    for ticket_id in sorted(state.tickets):
        seen = state.history.get(ticket_id, Counter())
        fired = (seen[WARNED], seen[ESCALATED], seen["SendAutoReply"])
        queued = (kinds[ticket_id]["auto reply"], kinds[ticket_id]["notification"])
        if fired != (1, 1, 1) or queued != (1, 2 * agents) or state.stages.get(ticket_id) != 2:
            problems.append(
                f"ticket {ticket_id}: warned {fired[0]}×, escalated {fired[1]}×, "
                f"auto-replied {fired[2]}×, outbox {dict(kinds[ticket_id])}, "
                f"stage {state.stages.get(ticket_id)}"
            )
    return _first(problems, "tickets")


@dataclass(frozen=True)
class RelayCount:
    """What reached the relay against the outbox: rows never received, and resends."""

    missing: list[str]
    duplicates: int
    received: int


def relay_count(state: EndState, received: Sequence[Received]) -> RelayCount:
    arrived = Counter(r.message_id for r in received)
    missing = [m for _t, _k, m in state.outbox_rows if arrived[m] == 0]
    duplicates = sum(n - 1 for n in arrived.values())
    return RelayCount(_first(missing, "outbox rows"), duplicates, len(received))


async def outstanding(db: Database, relay_ids: set[str], letters: int) -> str:
    """What the daemons still have to do ("" when nothing): letters not yet articles, inbox
    and outbox rows not settled, first responses not escalated, mail not at the relay."""
    async with db.connect() as conn:

        async def one(sql: str) -> int:
            return int((await conn.execute(text(sql))).scalar_one())

        articles = await one(
            "SELECT count(DISTINCT a_message_id) FROM article_data_mime "
            "WHERE a_message_id LIKE '<chaos-%'"
        )
        inbox = await one("SELECT count(*) FROM inbox_message WHERE state <> 'done'")
        outbox = await one("SELECT count(*) FROM outbox_message WHERE state <> 'sent'")
        waiting = await one("SELECT count(*) FROM ticket_escalation WHERE response_stage < 2")
        sent = [m for (m,) in await conn.execute(text("SELECT message_id FROM outbox_message"))]
    unseen = sum(1 for m in sent if m not in relay_ids)
    parts = [
        (letters - articles, "letters not yet articles"), (inbox, "inbox rows not done"),
        (outbox, "outbox rows not sent"), (waiting, "first responses not escalated"),
        (unseen, "outbox mails not at the relay"),
    ]  # fmt: skip
    return ", ".join(f"{n} {what}" for n, what in parts if n)


def delivery_problems(
    letters: Sequence[Letter], received: Sequence[Received], agent: str
) -> list[str]:
    """Seen from the mailboxes: each new letter's sender got its auto-reply (answering that
    letter), and the agent got the warning and the escalation about its ticket."""
    replied: set[tuple[str, str]] = set()  # (answered Message-ID, recipient)
    told: Counter[str] = Counter()  # subjects the agent got
    for mail in received:
        headers = message_from_bytes(mail.data, policy=default_policy)
        if agent in mail.rcpt_tos:  # "[Ticket#…] Escalated (first response): <title>"
            told[str(headers["Subject"]).partition("] ")[2]] += 1
        else:
            replied |= {(str(headers["In-Reply-To"]), to) for to in mail.rcpt_tos}
    roots = [letter for letter in letters if not letter.parent]
    unanswered = [r.message_id for r in roots if (r.message_id, r.sender) not in replied]
    untold = [
        f"{r.subject}: {event}" for r in roots
        for event in ("Escalation warning", "Escalated")
        if told[f"{event} (first response): {r.subject}"] == 0
    ]  # fmt: skip
    return _first((f"{m}: no auto-reply" for m in unanswered), "letters") + _first(
        (f"{u}: the agent was not told" for u in untold), "events"
    )
