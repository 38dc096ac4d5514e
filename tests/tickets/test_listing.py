"""The queue view's reads: filters, sorts, keyset paging and counts, within the agent's queues
(both engines)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select

from pytrs.schema.tables import queue, ticket
from pytrs.tickets import TicketUpdate
from pytrs.tickets.listing import (
    SORTS,
    QueueFilter,
    Sort,
    decode_cursor,
    queue_counts,
    queue_page,
)

from .conftest import Desk

STATES = ["new", "open", "closed successful", "pending reminder", "open", "new"]
PRIORITIES = ["1 very low", "3 normal", "5 very high", "2 low", "4 high", "3 normal"]


async def seed(desk: Desk, n: int = 24) -> dict[str, int]:
    """`n` tickets over Support and Sales with varied states, priorities, owners and titles."""
    jdoe = await desk.agent("jdoe")
    for i in range(n):
        ticket_id, _tn = await desk.ticket(
            f"{'ZYXWVUTSRQPONMLKJIHGFEDCBA'[i % 26]} ticket {i:02d}",
            queue="Sales" if i % 3 == 0 else "Support",
            state=STATES[i % len(STATES)],
            priority=PRIORITIES[i % len(PRIORITIES)],
        )
        if i % 4 == 1:
            async with desk.db.transaction() as conn:
                await desk.service.update(
                    conn, ticket_id, TicketUpdate(owner="jdoe", lock="lock"), actor=jdoe
                )
    async with desk.db.connect() as conn:
        return {name: i for name, i in await conn.execute(select(queue.c.name, queue.c.id))}


async def walk(
    desk: Desk, readable: Collection[int], where: QueueFilter, sort: Sort, limit: int = 5
) -> list[Any]:
    """Every row, page after page through the next cursors."""
    rows: list[Any] = []
    cursor = None
    async with desk.db.connect() as conn:
        while True:
            page = await queue_page(conn, readable, where, sort, cursor, limit=limit)
            rows.extend(page.rows)
            if page.next_cursor is None:
                return rows
            cursor = page.next_cursor


async def all_ids(desk: Desk, readable: Collection[int]) -> set[int]:
    async with desk.db.connect() as conn:
        found = await conn.execute(select(ticket.c.id).where(ticket.c.queue_id.in_(readable)))
        return set(found.scalars())


async def test_every_sort_walks_each_ticket_exactly_once_in_order(desk: Desk) -> None:
    queues = await seed(desk)
    readable = {queues["Support"], queues["Sales"]}
    everything = await all_ids(desk, readable)
    for key in SORTS:
        for order in ("asc", "desc"):
            rows = await walk(desk, readable, QueueFilter(view="all"), Sort(key, order))
            assert sorted(r.id for r in rows) == sorted(everything), (key, order)
            values = [_key(r, key) for r in rows]
            assert values == sorted(values, reverse=order == "desc"), (key, order)


def _key(row: Any, key: str) -> Any:
    value = {"age": row.created, "changed": row.changed, "priority": row.priority_id,
             "number": row.tn, "title": row.title}[key]  # fmt: skip
    return value if key == "number" else (value, row.id)


async def test_previous_pages_mirror_next_pages(desk: Desk) -> None:
    queues = await seed(desk)
    readable = {queues["Support"], queues["Sales"]}
    where, sort = QueueFilter(view="all"), Sort("priority")
    pages = []
    cursor = None
    async with desk.db.connect() as conn:
        while True:
            page = await queue_page(conn, readable, where, sort, cursor, limit=7)
            pages.append(page)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert pages[0].prev_cursor is None and len(pages) == 4
        back = pages[-1]
        for expected in reversed(pages[:-1]):
            assert back.prev_cursor is not None
            back = await queue_page(conn, readable, where, sort, back.prev_cursor, limit=7)
            assert [r.id for r in back.rows] == [r.id for r in expected.rows]
        assert back.prev_cursor is None and back.next_cursor is not None


async def test_paging_is_stable_under_inserts(desk: Desk) -> None:
    queues = await seed(desk, 12)
    readable = {queues["Support"], queues["Sales"]}
    seen: list[int] = []
    async with desk.db.connect() as conn:
        page = await queue_page(conn, readable, QueueFilter(view="all"), Sort("age"), limit=5)
    seen += [r.id for r in page.rows]
    await desk.ticket("Arrived while paging")  # newest: sorts last, after everything seen
    rows = []
    async with desk.db.connect() as conn:
        cursor = page.next_cursor
        while cursor:
            page = await queue_page(conn, readable, QueueFilter(view="all"), Sort("age"), cursor)
            rows += page.rows
            cursor = page.next_cursor
    seen += [r.id for r in rows]
    assert len(seen) == len(set(seen)) == 13


async def test_filters(desk: Desk) -> None:
    queues = await seed(desk)
    support, sales = queues["Support"], queues["Sales"]
    readable = {support, sales}
    jdoe = (await desk.agent("jdoe")).user_id

    async def states(where: QueueFilter, among: Collection[int] = readable) -> set[str]:
        return {r.state for r in await walk(desk, among, where, Sort())}

    assert await states(QueueFilter()) == {"new", "open", "pending reminder"}
    assert await states(QueueFilter(view="closed")) == {"closed successful"}
    assert await states(QueueFilter(view="pending")) == {"pending reminder"}
    assert "closed successful" in await states(QueueFilter(view="all"))
    assert await states(QueueFilter(view="all", state_id=4)) == {"open"}
    in_sales = await walk(desk, readable, QueueFilter(view="all", queue_id=sales), Sort())
    assert {r.queue for r in in_sales} == {"Sales"} and len(in_sales) == 8
    mine = await walk(desk, readable, QueueFilter(view="all", owner_id=jdoe), Sort())
    assert len(mine) == 6 and {(r.owner, r.locked) for r in mine} == {("jdoe", True)}
    free = await walk(desk, readable, QueueFilter(view="all", unassigned=True), Sort())
    assert len(free) == 18 and not any(r.locked for r in free)
    # A queue named in the filter but not readable shows nothing, nor do no queues at all.
    assert await walk(desk, {support}, QueueFilter(view="all", queue_id=sales), Sort()) == []
    assert await walk(desk, set(), QueueFilter(view="all"), Sort()) == []
    assert {r.queue for r in await walk(desk, {support}, QueueFilter(view="all"), Sort())} == {
        "Support"
    }


async def test_counts_per_queue_are_open_tickets_under_the_owner_filter(desk: Desk) -> None:
    queues = await seed(desk)
    readable = {queues["Support"], queues["Sales"], queues["Billing"]}
    jdoe = (await desk.agent("jdoe")).user_id
    async with desk.db.connect() as conn:
        sales_view = QueueFilter(view="all", queue_id=queues["Sales"])
        every = await queue_counts(conn, readable, sales_view)
        closed = await queue_counts(conn, readable, QueueFilter(view="closed"))
        mine = await queue_counts(conn, readable, QueueFilter(owner_id=jdoe))
        hidden = await queue_counts(conn, {queues["Support"]}, QueueFilter(view="all"))
    expected = [("Billing", 0), ("Sales", 8), ("Support", 12)]
    assert [(c.name, c.tickets) for c in every] == expected
    assert [(c.name, c.tickets) for c in closed] == expected
    assert [(c.name, c.tickets) for c in mine] == [("Billing", 0), ("Sales", 2), ("Support", 4)]
    assert [(c.name, c.tickets) for c in hidden] == [("Support", 12)]


async def test_rows_carry_what_the_view_shows(desk: Desk) -> None:
    ticket_id, tn = await desk.ticket("Escalating", priority="5 very high")
    async with desk.db.transaction() as conn:
        await conn.execute(ticket.update().where(ticket.c.id == ticket_id).values(
            escalation_time=1_900_000_000))  # fmt: skip
    await desk.ticket("Calm")
    async with desk.db.connect() as conn:
        support = (await conn.execute(select(queue.c.id).where(queue.c.name == "Support"))).scalar()
        page = await queue_page(conn, {support}, QueueFilter(), Sort("priority"))
    top = page.rows[0]
    assert (top.tn, top.title, top.queue, top.state, top.priority) == (
        tn, "Escalating", "Support", "new", "5 very high",
    )  # fmt: skip
    assert top.customer == "alice@customer.example" and top.owner == "root@localhost"
    assert top.escalation_time == 1_900_000_000 and page.rows[1].escalation_time == 0


def test_garbled_or_foreign_cursors_start_at_the_first_page() -> None:
    for bad in ["", "!!!", "e30", "W10", "WyJhZ2UiXQ", "bm90IGpzb24"]:
        assert decode_cursor(bad, Sort().resolved()) is None


async def test_a_cursor_of_another_sort_is_ignored(desk: Desk) -> None:
    queues = await seed(desk, 8)
    readable = {queues["Support"], queues["Sales"]}
    async with desk.db.connect() as conn:
        first = await queue_page(conn, readable, QueueFilter(view="all"), Sort("title"), limit=3)
        other = await queue_page(
            conn, readable, QueueFilter(view="all"), Sort("age"), first.next_cursor, limit=3
        )
        again = await queue_page(conn, readable, QueueFilter(view="all"), Sort("age"), limit=3)
    assert [r.id for r in other.rows] == [r.id for r in again.rows]
