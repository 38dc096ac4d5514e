"""Postmaster worker throughput alone: a pre-filled inbox drained into tickets, on one core.

`ingest.py` measures the whole path with SMTP clients sharing the cores; this isolates the
worker (claim, parse, route, apply) so its cost per message can be profiled and compared:

    python bench/worker.py --n 3000 [--engine sqlite|postgresql] [--auto-reply] [--profile F]

With --auto-reply every new ticket is answered as `ingest.py --auto-reply` answers it (a
templated reply stored as a system article and queued in the outbox), so the CPU per mail of
the two runs gives the auto reply's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scratch import scratch_database

from pytrs.config import parse_config
from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.provisioning import provision
from pytrs.schema import inbox_repo, migrate
from pytrs.schema.database import create_database
from pytrs.vocabulary.inbox import InboxItem

# What `ingest.py --auto-reply` configures: every new ticket answered, no daily limit reached.
AUTO_REPLY: dict[str, Any] = {
    "outbound": {"relay": "127.0.0.1:9", "loop_secret": "bench-worker-loop-secret-0123456789"},
    "loop_protection": {"max_auto_responses_per_address_per_day": 1000000},
    "auto_responses": [
        {
            "queue": "Support",
            "type": "auto reply",
            "subject": "Re: {{ article.subject }}",
            "body": "Dear {{ customer.full_name }},\n\nwe received your mail and opened ticket "
            "{{ ticket.hook }}{{ ticket.tn }}.\n\n{{ quoted }}\n",
        }
    ],
}

GEN = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "gen_corpus.py"


def corpus(n: int, seed: int) -> list[bytes]:
    out = Path(tempfile.mkdtemp(prefix="pytrs-worker-bench-"))
    subprocess.run(
        [sys.executable, str(GEN), "--out", str(out), "--n", str(n), "--seed", str(seed)],
        check=True, capture_output=True,
    )  # fmt: skip
    return [p.read_bytes().replace(b"\n", b"\r\n") for p in sorted(out.glob("*.eml"))]


async def run(args: argparse.Namespace) -> None:
    raws = corpus(args.n, args.seed)
    async with scratch_database(args.engine, args.pg_url, "pytrs_wbench") as database:
        await drain_corpus(args, raws, database)


async def drain_corpus(
    args: argparse.Namespace, raws: list[bytes], database: dict[str, str]
) -> None:
    settings: dict[str, Any] = {
        "database": database,
        "queues": [{"name": "Support"}],
        "system_addresses": [{"address": "support@helpdesk.example.com", "queue": "Support"}],
        "postmaster": {"batch_size": args.batch},
    }
    if args.auto_reply:
        settings |= AUTO_REPLY
    config = parse_config(settings, environ={})
    db = create_database(config.database)
    try:
        await migrate.upgrade(db)
        await provision(db, config)
        for start in range(0, len(raws), 500):
            async with db.transaction() as conn:
                chunk = raws[start : start + 500]
                items = [InboxItem("smtp", r, "support@helpdesk.example.com") for r in chunk]
                await inbox_repo.store(conn, items)
        addresses = AddressBook()
        await addresses.reload(db)
        worker = PostmasterWorker(config, db, addresses)
        profiler = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        cpu_started = time.process_time()
        if profiler:
            profiler.enable()
        await worker.drain()
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        elapsed = time.perf_counter() - started
        # The process's CPU (the aiosqlite thread included; not the PostgreSQL server's):
        # the figure to compare across runs on a shared machine, where wall time is noisy.
        cpu = time.process_time() - cpu_started
        rate = len(raws) / elapsed
        each = elapsed / len(raws) * 1000
        print(f"{args.engine}: {len(raws)} messages in {elapsed:.2f} s = {rate:,.0f} msg/s "
              f"({each:.2f} ms each, {cpu / len(raws) * 1000:.3f} ms CPU each, "
              f"batch {args.batch}{', auto reply' if args.auto_reply else ''})")  # fmt: skip
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1/test")
    parser.add_argument("--auto-reply", action="store_true", help="answer every new ticket")
    parser.add_argument("--profile", help="write cProfile stats of the drain to this file")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
