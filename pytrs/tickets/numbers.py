"""New ticket numbers from the configured generator (Znuny's TicketCreateNumber).

The postmaster numbers a batch's new tickets at once, the service one ticket at a time; both
go through `new_numbers`, with the counter the configuration chooses (`counter_for`): pytrs's
own one-row-per-scope counter, or, beside Znuny (``[database] mode = "znuny"``), Znuny's own
protocol of one row per number (``schema.znuny_counter``), so that Znuny and pytrs creating
tickets in one database never hand out the same number. A counter behind existing tickets (a
database taken over from Znuny, a reset counter row, another generator before) would hand out
taken numbers forever on SQLite, where a failed batch rolls the counter back too: like Znuny,
taken numbers are skipped, with a bound on the tries.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.routing.ticket_number import TicketNumberGenerator
from pytrs.schema import ticket_repo, znuny_counter
from pytrs.schema.database import Database, utcnow

MAX_TRIES = 1000

# (counter scope, count, now) → `count` reserved counter values, one per number.
Allocate = Callable[[str, int, datetime], Awaitable[Sequence[int]]]


async def new_numbers(
    conn: AsyncConnection, numbers: TicketNumberGenerator, count: int,
    allocate: Allocate | None = None, draw: Callable[[int], int] = secrets.randbelow,
) -> list[str]:  # fmt: skip
    """`count` free ticket numbers. `allocate` defaults to pytrs's counter in `conn`'s
    transaction; `draw(n)` picks the random part of a Random generator's numbers.

    Raises RuntimeError when no free number turns up within MAX_TRIES rounds.
    """
    if count <= 0:
        return []
    # One "now" for the date in the numbers and the counter's day: a batch straddling
    # midnight must not number today's counter with yesterday's date.
    now = utcnow()
    today = now.date()
    scope = numbers.counter_scope
    if scope is None:  # Random: no counter; the unique index on ticket.tn guards clashes
        return [numbers.build(0, today, draw(10**10)) for _ in range(count)]
    allocate = allocate or pytrs_counter(conn)
    scope_key = ticket_repo.counter_scope(scope, numbers.daily(), today)
    found: list[str | None] = [None] * count
    missing = list(range(count))
    for _ in range(MAX_TRIES):
        counters = await allocate(scope_key, len(missing), now)
        for counter, index in zip(counters, missing, strict=True):
            found[index] = numbers.build(counter, today)
        taken = await ticket_repo.existing_numbers(conn, [found[i] or "" for i in missing])
        missing = [i for i in missing if found[i] in taken]
        if not missing:
            return [tn or "" for tn in found]
    raise RuntimeError(f"no free ticket number after {MAX_TRIES} tries in {scope_key}")


def counter_for(
    mode: str, conn: AsyncConnection, numbers: TicketNumberGenerator, db: Database | None = None
) -> Allocate:
    """The counter `[database] mode` calls for: Znuny's protocol for "znuny", else pytrs's own
    (in a short transaction of its own when `db` is given and has one to spare)."""
    if mode == "znuny":
        return znuny_counter_for(conn, numbers)
    return pytrs_counter(conn, db)


def pytrs_counter(conn: AsyncConnection, db: Database | None = None) -> Allocate:
    """pytrs's counter: one row per scope, `count` consecutive values at once."""

    async def allocate(scope: str, count: int, now: datetime) -> Sequence[int]:
        if db is None:
            first = await ticket_repo.allocate_counter(conn, scope, count)
        else:
            first = await ticket_repo.allocate_counter_for(db, conn, scope, count)
        return range(first, first + count)

    return allocate


def znuny_counter_for(conn: AsyncConnection, numbers: TicketNumberGenerator) -> Allocate:
    """Znuny's counter protocol (``schema.znuny_counter``) for `numbers`' generator."""

    async def allocate(scope: str, count: int, now: datetime) -> Sequence[int]:
        offset = 1
        if not numbers.daily() and await znuny_counter.is_empty(conn):
            last = await znuny_counter.last_ticket_number(conn)
            offset = initial_offset(numbers, last)
        return await znuny_counter.allocate(conn, count, now, daily=numbers.daily(), offset=offset)

    return allocate


def initial_offset(numbers: TicketNumberGenerator, last_tn: str | None) -> int:
    """Where Znuny's AutoIncrement starts an empty counter on a system that has tickets: one
    past the last ticket's counter, unless that number looks date-based (then 1).

    Follows Znuny 7.0 ``AutoIncrement.pm`` ``InitialCounterOffsetCalculate``: the system id
    (when ``check_system_id``) and leading zeros are stripped from the last number.
    """
    if not last_tn or _looks_date_based(last_tn):
        return 1
    sid = re.escape(numbers.system_id) if numbers.check_system_id else ""
    rest = re.sub(rf"\A{sid}0*", "", last_tn)
    return int(rest) + 1 if rest.isascii() and rest.isdigit() else 1


def _looks_date_based(tn: str) -> bool:
    head = tn[:8]
    if len(head) != 8 or not head.isascii() or not head.isdigit():
        return False
    try:
        date(int(head[:4]), int(head[4:6]), int(head[6:]))
    except ValueError:
        return False
    return True
