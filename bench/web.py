"""Web view and JSON API latency at scale: queue view, search and zoom, and the API's ticket
list, search, ticket and articles, over ASGI on a seeded database.

Seeds 100,000 tickets / 300,000 articles (bulk inserts through the ticket writes' own row
builders and search index code, so the index is what the service would have written), then
times requests of a logged-in agent through httpx's ASGITransport and prints p50/p95 in ms:

    python bench/web.py [--engine sqlite|postgresql] [--tickets 100000] [--direct]

The seeded database is kept between runs (SQLite: a file under --cache; PostgreSQL: a schema
named after the size), brought to the current migration and reused when its size matches;
--reseed rebuilds it. `--direct` times the read functions without HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import shutil
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from scratch import pg_schema, settle_statistics
from sqlalchemy import func, select, text

from pytrs.config import Config, parse_config
from pytrs.provisioning import provision
from pytrs.schema import api_tokens, migrate, users_repo
from pytrs.schema.database import (
    Database,
    create_database,
    utcnow,
)
from pytrs.schema.tables import queue, ticket, users
from pytrs.tickets import rows
from pytrs.tickets.model import ArticleInput
from pytrs.tickets.writes import Writes, insert_articles, insert_tickets
from pytrs.users import passwords
from pytrs.vocabulary import znuny
from pytrs.web.app import create_app
from pytrs.web.sessions import COOKIE

GEN = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "gen_corpus.py"
QUEUES = ["Support", "Sales", "Billing", "Hardware"]
LOGIN, PASSWORD = "bench.agent", "correct horse battery staple 42"
CHUNK = 2_000  # tickets per transaction while seeding
# (state, weight): most tickets of a year-old desk are closed.
STATES = [("closed successful", 62), ("closed unsuccessful", 8), ("open", 14), ("new", 8),
          ("pending reminder", 5), ("pending auto close+", 3)]  # fmt: skip


def corpus_module() -> ModuleType:
    """gen_corpus.py's vocabulary (products, issues, sentences), for realistic text."""
    spec = importlib.util.spec_from_file_location("gen_corpus", GEN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_config(engine: str, args: argparse.Namespace) -> Config:
    if engine == "sqlite":
        database = {"url": f"sqlite+aiosqlite:///{args.cache / f'web-{args.tickets}.db'}"}
    else:
        database = {"url": args.pg_url, "schema": f"pytrs_webbench_{args.tickets}"}
    return parse_config(
        {
            "database": database,
            "web": {"listen": ""},
            "queues": [{"name": name} for name in QUEUES],
            "system_addresses": [
                {"address": f"{name.lower()}@helpdesk.example.com", "queue": name}
                for name in QUEUES
            ],
        },
        environ={},
    )


# --- seeding ---


class Seeder:
    """Builds tickets and their articles from gen_corpus's vocabulary, deterministically."""

    def __init__(self, gen: ModuleType, queue_ids: list[int], agent_id: int) -> None:
        self.gen, self.queue_ids, self.agent_id = gen, queue_ids, agent_id
        self.rng = random.Random(12)
        self.states = [znuny.STATE_IDS[s] for s, w in STATES for _ in range(w)]
        self.start = datetime(2025, 12, 1)

    def ticket(self, i: int, at: datetime) -> tuple[dict[str, Any], list[ArticleInput]]:
        g, rng = self.gen, self.rng
        ctx = {
            "product": rng.choice(g.PRODUCTS), "issue": rng.choice(g.ISSUES),
            "order": rng.randrange(100000, 999999), "company": rng.choice(g.COMPANIES),
        }  # fmt: skip
        first, last = rng.choice(g.FIRST_NAMES), rng.choice(g.LAST_NAMES)
        address = f"{first}.{last}{rng.randrange(1, 500)}@{rng.choice(g.DOMAINS)}".lower()
        subject = g.fill(rng, rng.choice(g.SUBJECT_TEMPLATES), ctx)
        kind = rng.choice(["ascii", "ascii", "ascii", "latin1", "utf8"])
        mine = rng.random() < 0.02
        values = {
            "tn": f"2025{i:08d}", "title": subject, "queue_id": rng.choice(self.queue_ids),
            "ticket_state_id": rng.choice(self.states),
            "ticket_priority_id": rng.choice([1, 2, 3, 3, 3, 3, 4, 5]),
            "ticket_lock_id": 2 if mine else 1, "user_id": self.agent_id if mine else 1,
            "responsible_user_id": 1, "customer_user_id": address, "customer_id": address,
            "escalation_time": int(at.timestamp()) + 86400 if rng.random() < 0.1 else 0,
        }  # fmt: skip
        articles = []
        for n in range(rng.choice([1, 2, 3, 3, 4, 5])):
            body = "\n\n".join(g.body_paragraphs(rng, ctx, kind))
            them, us = f"{first} {last} <{address}>", "Support <support@helpdesk.example.com>"
            customer = n % 2 == 0
            articles.append(ArticleInput(
                sender="customer" if customer else "agent",
                from_=them if customer else us, to=us if customer else them,
                subject=subject if n == 0 else f"Re: {subject}", body=body,
                message_id=f"<bench.{i}.{n}@example.com>",
            ))  # fmt: skip
        return values, articles


async def seed(db: Database, config: Config, n: int) -> None:
    await migrate.upgrade(db)
    await provision(db, config)
    await users_repo.add(db, users_repo.NewUser(
        login=LOGIN, email="bench.agent@helpdesk.example.com",
        pw=passwords.hash_password(PASSWORD), first_name="Bench", last_name="Agent",
        queues=tuple(QUEUES[:3]),
    ))  # fmt: skip
    async with db.connect() as conn:
        ids = dict((await conn.execute(select(queue.c.name, queue.c.id))).all())
        agent = await conn.scalar(text("SELECT id FROM users WHERE login = :l"), {"l": LOGIN})
    seeder = Seeder(corpus_module(), [ids[q] for q in QUEUES], int(agent))
    started, made = time.perf_counter(), 0
    for first in range(0, n, CHUNK):
        at = seeder.start + timedelta(minutes=5 * first)
        async with db.transaction() as conn:
            made += await _chunk(conn, seeder, range(first, min(first + CHUNK, n)), at)
        print(f"\r  seeded {first + CHUNK:,} tickets, {made:,} articles "
              f"({time.perf_counter() - started:.0f} s)", end="", flush=True)  # fmt: skip
    print()


async def _chunk(conn: Any, seeder: Seeder, numbers: range, at: datetime) -> int:
    built = [seeder.ticket(i, at + timedelta(minutes=5 * k)) for k, i in enumerate(numbers)]
    ticket_rows = [rows.ticket_row(v, at, 1) for v, _ in built]
    for k, row in enumerate(ticket_rows):
        row["create_time"] = row["change_time"] = at + timedelta(minutes=5 * k)
    ticket_ids = await insert_tickets(conn, ticket_rows)
    writes = Writes(at)
    pairs = [
        (tid, a) for tid, (_v, articles) in zip(ticket_ids, built, strict=True) for a in articles
    ]
    article_ids = await insert_articles(
        conn, [rows.article_row(tid, a, "", at, 1) for tid, a in pairs]
    )
    for article_id, (_tid, content) in zip(article_ids, pairs, strict=True):
        writes.article(content, article_id)  # MIME row and search index entry, as the service
    await writes.flush(conn)
    return len(article_ids)


def engine_is_sqlite(config: Config) -> bool:
    return config.database.url.startswith("sqlite")


async def ensure_seeded(config: Config, args: argparse.Namespace) -> Database:
    if config.database.url.startswith("sqlite"):
        args.cache.mkdir(parents=True, exist_ok=True)
        path = args.cache / f"web-{args.tickets}.db"
        if args.reseed:
            for stale in args.cache.glob(f"web-{args.tickets}.db*"):
                stale.unlink()
    else:
        await pg_schema(args.pg_url, config.database.schema or "", drop=args.reseed)
    db = create_database(config.database)
    count = 0
    try:
        await migrate.upgrade(db)  # a cache seeded before a later migration stays usable
        async with db.connect() as conn:
            count = int(await conn.scalar(select(func.count()).select_from(ticket)) or 0)
    except Exception:  # anything unusable is seeded afresh
        count = -1
    if count != args.tickets:
        await db.close()
        if config.database.url.startswith("sqlite"):
            shutil.rmtree(path, ignore_errors=True)
            path.unlink(missing_ok=True)
        else:
            await pg_schema(args.pg_url, config.database.schema or "", drop=True)
        db = create_database(config.database)
        print(f"seeding {args.tickets:,} tickets …")
        await seed(db, config, args.tickets)
    await settle_statistics(db, sqlite=engine_is_sqlite(config))
    return db


# --- timing ---


async def signed_in(app: Any) -> httpx.AsyncClient:
    """An httpx client of `app` signed in as the bench agent through the login form."""
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 50000)),
        base_url="http://bench.example",
    )
    await client.get("/login")
    csrf = app.state.session_codec.loads(client.cookies.get(COOKIE, "")).csrf
    answer = await client.post(
        "/login", data={"login": LOGIN, "password": PASSWORD, "csrf_token": csrf}
    )
    assert answer.status_code == 303, answer.text[:500]
    return client


async def measure_asgi(
    config: Config, db: Database, case: dict[str, Any], args: argparse.Namespace
) -> list[Any]:
    app = create_app(config, db)
    urls = {
        "queue: first page (open, age)": "/",
        "queue: Support, changed desc": f"/?queue={case['support']}&sort=changed",
        "queue: deep page (all, cursor)": f"/?view=all&after={case['deep']}",
        "search: a word": f"/search?q={case['word']}",
        "search: an address": f"/search?q={case['address']}",
        "search: a ticket number": f"/search?q={case['tn']}",
        "zoom: /tickets/{tn}": f"/tickets/{case['tn']}",
    }
    # The JSON API's reads of the same data, with the same agent's bearer token.
    api = {
        "api: tickets, first page": "/api/v1/tickets?limit=50",
        "api: tickets, Support, changed": "/api/v1/tickets?queue=Support&sort=changed&limit=50",
        "api: deep page (cursor)": f"/api/v1/tickets?view=all&limit=50&cursor={case['deep']}",
        "api: search, a word": f"/api/v1/tickets/search?q={case['word']}",
        "api: ticket": f"/api/v1/tickets/{case['tn']}",
        "api: its articles": f"/api/v1/tickets/{case['tn']}/articles",
    }  # fmt: skip
    async with app.router.lifespan_context(app):
        client = await signed_in(app)
        token = await bench_token(db)
        try:
            results = []
            for name, url in (urls | api).items():
                headers = {"Authorization": f"Bearer {token}"} if url.startswith("/api/") else {}

                async def call(url: str = url, headers: dict[str, str] = headers) -> None:
                    answer = await client.get(url, headers=headers)
                    assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])

                results.append((name, *await timed(call, args.runs)))
            return results
        finally:
            await client.aclose()


async def bench_token(db: Database) -> str:
    """A fresh read token of the bench agent (tokens are cheap; an old one is never reused)."""
    async with db.connect() as conn:
        agent = await conn.scalar(select(users.c.id).where(users.c.login == LOGIN))
    _id, token = await api_tokens.create(
        db, user_id=int(agent), name="bench", scope="read", now=utcnow()
    )
    return token


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, float, float]:
    """(p50, p95, CPU p50) in ms of `runs` calls after two warm-up calls. The CPU time is this
    process's (all its threads: SQLite's runs in one), which other load on the machine
    inflates far less than the wall time; PostgreSQL's server time is not in it."""
    for _ in range(2):
        await call()
    times, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        await call()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return statistics.median(times), p95, statistics.median(cpu)


def print_table(engine: str, results: list[tuple[str, float, float, float]]) -> None:
    print(f"\n{engine}: p50 / p95 in ms (target p95 <= 50); cpu: this process's CPU ms (p50)")
    print(f"{'case':<34}{'p50':>8}{'p95':>8}{'cpu':>8}")
    for name, p50, p95, cpu in results:
        flag = "" if p95 <= 50 else "  over target"
        print(f"{name:<34}{p50:>8.1f}{p95:>8.1f}{cpu:>8.1f}{flag}")
    print(f"load average during the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


async def cases(db: Database) -> dict[str, Any]:
    """What the timed requests ask for: a readable queue, a deep cursor, a word, an address
    and a ticket number that exist in the seeded data."""
    from pytrs.tickets.listing import QueueFilter, Sort, queue_page

    async with db.connect() as conn:
        readable = set(
            (await conn.execute(select(queue.c.id).where(queue.c.name.in_(QUEUES[:3])))).scalars()
        )
        support = await conn.scalar(select(queue.c.id).where(queue.c.name == "Support"))
        some = (await conn.execute(
            select(ticket.c.tn, ticket.c.customer_user_id).where(ticket.c.queue_id == support)
            .order_by(ticket.c.id.desc()).limit(1)
        )).one()  # fmt: skip
        cursor = None
        for _ in range(25):  # 25 pages of 1,000: a cursor deep into the list
            page = await queue_page(conn, readable, QueueFilter(view="all"), Sort(), cursor, 1000)
            cursor = page.next_cursor
    return {"readable": readable, "support": support, "tn": some.tn,
            "address": some.customer_user_id, "word": "printer", "deep": cursor}  # fmt: skip


async def measure_direct(db: Database, case: dict[str, Any], runs: int) -> list[Any]:
    from pytrs.tickets.listing import QueueFilter, Sort, queue_counts, queue_page
    from pytrs.tickets.search_reads import search

    readable = case["readable"]

    def read(fn: Callable[..., Awaitable[Any]], *a: Any) -> Callable[[], Awaitable[Any]]:
        async def call() -> Any:
            async with db.connect() as conn:
                return await fn(conn, readable, *a)

        return call

    calls = {
        "queue: first page (open, age)": read(queue_page, QueueFilter(), Sort()),
        "queue: Support, changed desc": read(
            queue_page, QueueFilter(queue_id=case["support"]), Sort("changed")
        ),
        "queue: deep page (all, cursor)": read(
            queue_page, QueueFilter(view="all"), Sort(), case["deep"]
        ),
        "queue: counts per queue": read(queue_counts, QueueFilter()),
        "search: a word": read(search, case["word"]),
        "search: an address": read(search, case["address"]),
        "search: a ticket number": read(search, case["tn"]),
    }
    return [(name, *await timed(call, runs)) for name, call in calls.items()]


async def run(engine: str, args: argparse.Namespace) -> None:
    config = bench_config(engine, args)
    db = await ensure_seeded(config, args)
    try:
        case = await cases(db)
        if args.direct:
            print_table(
                f"{engine} (read functions, no HTTP)", await measure_direct(db, case, args.runs)
            )
        else:
            print_table(f"{engine} (ASGI)", await measure_asgi(config, db, case, args))
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), action="append")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=60, help="timed requests per case")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/pytrs-web-bench"))
    parser.add_argument("--reseed", action="store_true", help="seed afresh, ignoring the cache")
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1/test")
    parser.add_argument("--direct", action="store_true", help="time the reads without HTTP")
    args = parser.parse_args()
    for engine in args.engine or ["sqlite"]:
        asyncio.run(run(engine, args))


if __name__ == "__main__":
    main()
