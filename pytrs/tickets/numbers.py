"""New ticket numbers from the configured generator (Znuny's TicketCreateNumber).

The postmaster numbers a batch's new tickets at once, the service one ticket at a time; both
go through `new_numbers`. A counter behind existing tickets (a database taken over from Znuny,
a reset counter row, another generator before) would hand out taken numbers forever on SQLite,
where a failed batch rolls the counter back too: like Znuny, taken numbers are skipped, with a
bound on the tries.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.routing.ticket_number import TicketNumberGenerator
from pytrs.schema import ticket_repo
from pytrs.schema.database import utcnow

MAX_TRIES = 1000

# (counter scope, count) → the first of `count` reserved counter values.
Allocate = Callable[[str, int], Awaitable[int]]


async def new_numbers(
    conn: AsyncConnection, numbers: TicketNumberGenerator, count: int,
    allocate: Allocate | None = None,
) -> list[str]:  # fmt: skip
    """`count` free ticket numbers. `allocate` defaults to the counter in `conn`'s transaction.

    Raises RuntimeError when no free number turns up within MAX_TRIES rounds.
    """
    if count <= 0:
        return []
    today = utcnow().date()
    scope = numbers.counter_scope
    if scope is None:  # Random: no counter; the unique index on ticket.tn guards clashes
        return [numbers.build(0, today, secrets.randbelow(10**10)) for _ in range(count)]

    async def in_transaction(key: str, n: int) -> int:
        return await ticket_repo.allocate_counter(conn, key, n)

    allocate = allocate or in_transaction
    scope_key = ticket_repo.counter_scope(scope, numbers.daily(), today)
    found: list[str | None] = [None] * count
    missing = list(range(count))
    for _ in range(MAX_TRIES):
        first = await allocate(scope_key, len(missing))
        for offset, index in enumerate(missing):
            found[index] = numbers.build(first + offset, today)
        taken = await ticket_repo.existing_numbers(conn, [found[i] or "" for i in missing])
        missing = [i for i in missing if found[i] in taken]
        if not missing:
            return [tn or "" for tn in found]
    raise RuntimeError(f"no free ticket number after {MAX_TRIES} tries in {scope_key}")
