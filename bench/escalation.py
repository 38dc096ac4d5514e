"""Escalations at scale: one due scan with its dispatch among 1,000,000 open tickets, and what
the escalation recompute adds to a ticket change.

    python bench/escalation.py [--engine sqlite|postgresql|both] [--tickets 1000000]
                               [--due 100] [--runs 5] [--pg-url URL] [--reseed]

Seeds `--tickets` open tickets, every one with an escalation clock row due in the future (as
a busy desk with targets on every queue has them), with INSERT … SELECT over a series (the
ticket writes' own row builder gives the constant columns). The seeded database is kept for
the next run (SQLite: a file under bench/out/; PostgreSQL: a schema named after the size) and
reused when its size matches; `--reseed` builds it again. Then, per run, `--due` of those
clocks are made due and timed:

* `scan+dispatch`: one `DueScanner.run` firing them: the claim through the `next_due` index,
  clocks advanced, history, one notification each composed and put in the outbox, commit;
* `  of which composing`: the same number of notifications composed alone (no database), the
  part of the dispatch that is `responders.message.Composer`'s;
* `scan, 0 due`: the same scan when nothing is due (what every interval costs a quiet desk);
* `update (targets)` / `update (none)`: one `TicketService.update` changing priority and
  state, in its own transaction, of a ticket whose queue has escalation targets and of one
  whose queue has none: the difference is the recompute the ticket writes do on every change.

Prints median and max milliseconds per line. The issue's target: scan+dispatch of 100 due
among 1,000,000 within 50 ms on either engine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scratch import pg_schema, settle_statistics
from sqlalchemy import delete, func, select, text, update

from pytrs.calendars import always
from pytrs.config import Config, parse_config
from pytrs.provisioning import provision
from pytrs.scheduler.due_scan import DueScanner
from pytrs.scheduler.notifications import Notice, Notifier
from pytrs.schema import generations, migrate, ticket_repo
from pytrs.schema.database import Database, create_database
from pytrs.schema.escalation_due import Agent
from pytrs.schema.tables import outbox, queue, ticket, ticket_escalation, ticket_history, users
from pytrs.tickets import rows
from pytrs.tickets.model import Actor, NewTicket, TicketUpdate
from pytrs.tickets.service import TicketService
from pytrs.vocabulary import znuny

OUT = Path(__file__).resolve().parent / "out"
SEED_CHUNK = 100_000  # tickets per transaction while seeding
LOOP_SECRET = "bench-escalation-loop-secret-0123456789"
DAY = 86_400


def bench_config(engine: str, args: argparse.Namespace) -> Config:
    if engine == "sqlite":
        database = {"url": f"sqlite+aiosqlite:///{OUT / f'escalation-{args.tickets}.db'}"}
    else:
        database = {"url": args.pg_url, "schema": f"pytrs_escbench_{args.tickets}"}
    return parse_config(
        {
            "database": database,
            "web": {"listen": ""},
            "outbound": {"loop_secret": LOOP_SECRET},
            "queues": [
                {
                    "name": "Support",
                    "first_response_minutes": 240,
                    "update_minutes": 480,
                    "solution_minutes": 2400,
                    "notify_before_percent": 80,
                },
                {"name": "Plain"},
            ],
            "system_addresses": [
                {"address": "support@helpdesk.example.com", "queue": "Support"},
                {"address": "plain@helpdesk.example.com", "queue": "Plain"},
            ],
            "agents": [
                {"login": "bench", "email": "bench@helpdesk.example.com", "queues": ["Support"]}
            ],
        },
        environ={},
    )


# --- seeding ------------------------------------------------------------------------------------


# A series of integers a..b as a table `s(g)`, in each engine's words.
SERIES = {
    "sqlite": "WITH RECURSIVE s(g) AS (SELECT :a UNION ALL SELECT g + 1 FROM s WHERE g < :b) ",
    "postgresql": "WITH s(g) AS (SELECT generate_series(CAST(:a AS bigint), :b)) ",
}
TN = {"sqlite": "printf('2026%010d', g)", "postgresql": "'2026' || lpad(CAST(g AS text), 10, '0')"}


async def seed(db: Database, config: Config, n: int, engine: str) -> None:
    """`n` open tickets in queue Support owned by the bench agent, each with a clock row due
    in the future, made by the database itself (INSERT … SELECT over a series): a million
    in a minute or two rather than a quarter of an hour through the row builders."""
    await migrate.upgrade(db)
    await provision(db, config)
    async with db.connect() as conn:
        support = await conn.scalar(select(queue.c.id).where(queue.c.name == "Support"))
        agent = await conn.scalar(select(users.c.id).where(users.c.login == "bench"))
    sample = rows.ticket_row({"queue_id": support, "ticket_state_id": znuny.STATE_OPEN,
                              "ticket_priority_id": 3, "ticket_lock_id": 1, "user_id": agent,
                              "responsible_user_id": agent}, datetime.now(UTC).replace(tzinfo=None),
                             1)  # fmt: skip
    constants = {k: v for k, v in sample.items() if k not in ("escalation_time",)}
    columns = ["tn", "title", "escalation_time", *constants]
    values = [TN[engine], "'Bench ticket ' || CAST(g AS text)", ":base + g",
              *(f":{k}" for k in constants)]  # fmt: skip
    fill_tickets = text(
        SERIES[engine] + f"INSERT INTO ticket ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM s"
    )
    # Every clock due in the future, a second apart: the index holds them all.
    fill_clocks = text(
        "INSERT INTO ticket_escalation (ticket_id, next_due, response_time, response_notify, "
        "response_stage, update_time, update_notify, update_stage, solution_time, "
        "solution_notify, solution_stage, pending_time, pending_stage) "
        "SELECT id, :base + id, 0, 0, 0, 0, 0, 0, :base + :day + id, :base + id, 0, 0, 0 "
        "FROM ticket WHERE id > :after"
    )
    base = int(time.time()) + DAY
    started = time.perf_counter()
    for first in range(1, n + 1, SEED_CHUNK):
        last = min(first + SEED_CHUNK - 1, n)
        async with db.transaction() as conn:
            after = int(await conn.scalar(select(func.coalesce(func.max(ticket.c.id), 0))) or 0)
            await conn.execute(fill_tickets, {"a": first, "b": last, "base": base, **constants})
            await conn.execute(fill_clocks, {"base": base, "day": DAY, "after": after})
        print(f"\r  seeded {last:,} tickets ({time.perf_counter() - started:.0f} s)", end="",
              flush=True)  # fmt: skip
    print()


async def ensure_seeded(config: Config, args: argparse.Namespace) -> Database:
    sqlite = config.database.url.startswith("sqlite")
    if sqlite:
        OUT.mkdir(parents=True, exist_ok=True)
        if args.reseed:
            for stale in OUT.glob(f"escalation-{args.tickets}.db*"):
                stale.unlink()
    else:
        await pg_schema(args.pg_url, config.database.schema or "", drop=args.reseed)
    db = create_database(config.database)
    try:
        await migrate.upgrade(db)
        async with db.connect() as conn:
            count = int(await conn.scalar(select(func.count()).select_from(ticket)) or 0)
    except Exception:  # anything unusable is seeded afresh
        count = -1
    # The update timings add a few tickets of their own per run: more than seeded is reusable.
    if count < args.tickets:
        await db.close()
        if sqlite:
            for stale in OUT.glob(f"escalation-{args.tickets}.db*"):
                stale.unlink()
        else:
            await pg_schema(args.pg_url, config.database.schema or "", drop=True)
        db = create_database(config.database)
        print(f"seeding {args.tickets:,} tickets with escalation clocks …")
        await seed(db, config, args.tickets, "sqlite" if sqlite else "postgresql")
    await settle_statistics(db, sqlite=sqlite)
    return db


# --- timing -------------------------------------------------------------------------------------


async def make_due(db: Database, count: int, total: int, at: int) -> list[int]:
    """`count` clocks spread over the tickets, due at `at` (a response deadline, unfired)."""
    async with db.connect() as conn:
        first = int(await conn.scalar(select(func.min(ticket.c.id))) or 1)
    step = max(1, total // count)
    ids = [first + k * step for k in range(count)]
    async with db.transaction() as conn:
        await conn.execute(
            update(ticket_escalation)
            .where(ticket_escalation.c.ticket_id.in_(ids))
            .values(response_time=at, response_stage=0, next_due=at)
        )
    return ids


async def time_scans(db: Database, scanner: DueScanner, args: argparse.Namespace) -> list[Any]:
    full, empty, composing = [], [], []
    for run in range(args.runs):
        at = int(time.time()) - 60 - run
        await make_due(db, args.due, args.tickets, at)
        started = time.perf_counter()
        outcome = await scanner.run(now=at + 1)
        full.append(time.perf_counter() - started)
        assert sum(outcome.fired.values()) == args.due, outcome
        started = time.perf_counter()
        quiet = await scanner.run(now=at + 1)
        empty.append(time.perf_counter() - started)
        assert quiet.claimed == 0, quiet
        composing.append(await time_composing(db, scanner, args.due))
    # What the runs added, so that the next run starts from the same database.
    async with db.transaction() as conn:
        await conn.execute(delete(outbox).where(outbox.c.kind == "notification"))
        await conn.execute(
            delete(ticket_history).where(
                ticket_history.c.history_type_id.in_(
                    [znuny.history_type_id("EscalationResponseTimeStart"),
                     znuny.history_type_id("SendAgentNotification")]
                )
            )
        )  # fmt: skip
    return [
        (f"scan+dispatch, {args.due} due", full),
        ("  of which composing", composing),
        ("scan, 0 due", empty),
    ]


async def time_composing(db: Database, scanner: DueScanner, count: int) -> float:
    """Seconds to compose `count` escalation notifications to the bench agent, alone."""
    async with db.connect() as conn:
        ids = list((await conn.scalars(select(ticket.c.id).limit(count))).all())
        tickets = await ticket_repo.ticket_summaries(conn, ids)
    agent = [Agent("bench", "bench@helpdesk.example.com")]
    notice = Notice("response", "escalated", int(time.time()))
    calendar = always()
    started = time.perf_counter()
    for summary in tickets.values():
        sent, _problems = scanner.notifier.compose(
            summary, notice, calendar=calendar, now=notice.deadline, recipients=agent
        )
        assert len(sent) == 1
    return time.perf_counter() - started


async def time_updates(db: Database, service: TicketService, runs: int) -> list[Any]:
    out = []
    for queue_name in ("Support", "Plain"):
        async with db.transaction() as conn:
            ticket_id, _tn = await service.create(
                conn, NewTicket(title="Recompute", queue=queue_name), actor=Actor.SYSTEM
            )
        times = []
        for k in range(runs):
            # Priority and state each time: "open" and "new" are both open, so the clocks
            # are recomputed and stay as they were, as on most changes of a working day.
            change = TicketUpdate(
                priority="2 low" if k % 2 else "4 high", state="open" if k % 2 else "new"
            )
            started = time.perf_counter()
            async with db.transaction() as conn:
                await service.update(conn, ticket_id, change, actor=Actor.SYSTEM)
            times.append(time.perf_counter() - started)
        label = "targets" if queue_name == "Support" else "none"
        out.append((f"update ({label})", times))
    return out


async def ensure_targets(db: Database, config: Config) -> None:
    """The queues' targets in their Znuny columns, as provisioning writes `[[queues]]`'s (a
    database seeded before provisioning wrote them gets them here)."""
    async with db.transaction() as conn:
        for q in config.queues:
            await conn.execute(
                update(queue)
                .where(queue.c.name == q.name)
                .values(
                    first_response_time=q.first_response_minutes,
                    first_response_notify=q.notify_before_percent,
                    update_time=q.update_minutes, update_notify=q.notify_before_percent,
                    solution_time=q.solution_minutes, solution_notify=q.notify_before_percent,
                )
            )  # fmt: skip
        await generations.bump(conn, generations.ESCALATION)


async def run(engine: str, args: argparse.Namespace) -> list[Any]:
    config = bench_config(engine, args)
    db = await ensure_seeded(config, args)
    await ensure_targets(db, config)
    try:
        service = TicketService.from_config(config)
        scanner = DueScanner(db, service, Notifier(config, service.composer))
        results = await time_scans(db, scanner, args)
        results += await time_updates(db, service, max(50, 20 * args.runs))
        return [(engine, *r) for r in results]
    finally:
        await db.close()


def print_table(results: list[Any], tickets: int) -> None:
    print(f"\n{tickets:,} open tickets with clocks")
    print(f"{'engine':<11} {'what':<26} {'median ms':>10} {'max ms':>8} {'runs':>5}")
    for engine, what, times in results:
        ms = [t * 1000 for t in times]
        print(f"{engine:<11} {what:<26} {statistics.median(ms):>10.1f} {max(ms):>8.1f} "
              f"{len(ms):>5}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1/test")
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    results: list[Any] = []
    for engine in engines:
        results += asyncio.run(run(engine, args))
    print_table(results, args.tickets)


if __name__ == "__main__":
    main()
