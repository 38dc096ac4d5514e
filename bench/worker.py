"""Postmaster worker throughput alone: a pre-filled inbox drained into tickets, on one core.

`ingest.py` measures the whole path with SMTP clients sharing the cores; this isolates the
worker (claim, parse, route, apply) so its cost per message can be profiled and compared:

    python bench/worker.py --n 3000 [--engine sqlite|postgresql] [--profile FILE.prof]
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

from scratch import scratch_database

from pytrs.config import parse_config
from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.provisioning import provision
from pytrs.schema import inbox_repo, migrate
from pytrs.schema.database import create_database
from pytrs.vocabulary.inbox import InboxItem

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
    config = parse_config(
        {
            "database": database,
            "queues": [{"name": "Support"}],
            "system_addresses": [{"address": "support@helpdesk.example.com", "queue": "Support"}],
            "postmaster": {"batch_size": args.batch},
        },
        environ={},
    )
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
              f"batch {args.batch})")  # fmt: skip
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1/test")
    parser.add_argument("--profile", help="write cProfile stats of the drain to this file")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
