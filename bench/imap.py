"""Mailbox draining: a Dovecot folder of N bench-corpus messages into the inbox and into tickets.

Starts a throw-away Dovecot (the test harness in tests/dovecot.py), APPENDs the corpus, then
measures (1) messages/s fetched into the inbox by one IMAP account in delete mode, and (2) end
to end: fetcher and postmaster worker running together until every message is an article.

    python bench/imap.py --n 5000 [--engines sqlite,postgresql] [--batch 200]
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytrs.config import parse_config  # noqa: E402
from pytrs.gateway.addresses import AddressBook  # noqa: E402
from pytrs.gateway.fetchers import MailboxFetchers  # noqa: E402
from pytrs.gateway.imap import ImapFetcher, ImapSession  # noqa: E402
from pytrs.postmaster.worker import PostmasterWorker  # noqa: E402
from pytrs.provisioning import provision  # noqa: E402
from pytrs.schema import migrate  # noqa: E402
from pytrs.schema.database import create_database  # noqa: E402
from tests.dovecot import DovecotServer  # noqa: E402

GEN = ROOT.parent / "shared" / "bench" / "gen_corpus.py"


def corpus(n: int, seed: int) -> list[bytes]:
    out = Path(tempfile.mkdtemp(prefix="pytrs-imap-bench-"))
    subprocess.run(
        [sys.executable, str(GEN), "--out", str(out), "--n", str(n), "--seed", str(seed)],
        check=True, capture_output=True,
    )  # fmt: skip
    return [p.read_bytes().replace(b"\n", b"\r\n") for p in sorted(out.glob("*.eml"))]


def fill(server: DovecotServer, user: str, password: str, raws: list[bytes]) -> None:
    conn = imaplib.IMAP4(server.host, server.imap_port)
    conn.login(user, password)
    for raw in raws:
        conn.append("INBOX", None, None, raw)
    conn.logout()


async def database(engine: str, pg_url: str) -> tuple[dict[str, str], Any]:
    if engine == "sqlite":
        return {"url": f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"}, None
    schema = f"pytrs_ibench_{secrets.token_hex(4)}"
    admin = create_async_engine(pg_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return {"url": pg_url, "schema": schema}, (admin, schema)


async def count_articles(db: Any) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM article"))).scalar_one())


async def run_engine(
    engine: str, server: DovecotServer, raws: list[bytes], args: argparse.Namespace
) -> dict[str, float]:
    figures: dict[str, float] = {}
    for phase in ("inbox", "e2e"):
        user, password = f"b{secrets.token_hex(4)}", "bench"
        server.add_user(user, password)
        await asyncio.to_thread(fill, server, user, password, raws)
        settings, cleanup = await database(engine, args.pg_url)
        account = {
            "type": "imap", "host": server.host, "port": server.imap_port, "user": user,
            "password": password, "mode": "delete", "batch_size": args.batch, "name": "bench",
        }  # fmt: skip
        config = parse_config(
            {
                "database": settings, "queues": [{"name": "Support"}], "mail_accounts": [account],
                "system_addresses": [
                    {"address": "support@helpdesk.example.com", "queue": "Support"}
                ],
            },
            environ={},
        )  # fmt: skip
        db = create_database(config.database)
        try:
            await migrate.upgrade(db)
            await provision(db, config)
            acct = config.mail_accounts[0]
            fetcher = ImapFetcher(acct, db, default_max_size=64 * 1024 * 1024)
            session = ImapSession(acct, password)
            await session.open(readonly=False)
            started = time.perf_counter()
            if phase == "inbox":
                result = await fetcher.sync(session)
                assert result.fetched == len(raws), result
            else:
                addresses = AddressBook()
                await addresses.reload(db)
                worker = PostmasterWorker(config, db, addresses)
                fetching = asyncio.create_task(fetcher.sync(session))
                while not fetching.done():
                    if not await worker.run_once():
                        await asyncio.sleep(0.01)
                await fetching
                await worker.drain()
                assert await count_articles(db) == len(raws)
            elapsed = time.perf_counter() - started
            await session.close()
            figures[phase] = len(raws) / elapsed
            print(f"{engine:<11} {phase:<6} {len(raws)} messages in {elapsed:6.2f} s = "
                  f"{len(raws) / elapsed:7,.0f} msg/s")  # fmt: skip
        finally:
            await db.close()
            if cleanup:
                admin, schema = cleanup
                async with admin.connect() as conn:
                    await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                await admin.dispose()
    return figures


async def idle_latency(server: DovecotServer, raws: list[bytes], samples: int) -> list[float]:
    """Seconds from APPEND's answer to the inbox row, with the account waiting in IDLE."""
    user = f"i{secrets.token_hex(4)}"
    server.add_user(user, "bench")
    settings = {"url": f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/idle.db"}
    account = {
        "type": "imap", "host": server.host, "port": server.imap_port, "user": user,
        "password": "bench", "mode": "delete", "name": "idle", "poll_interval_seconds": 600.0,
    }  # fmt: skip
    config = parse_config({"database": settings, "mail_accounts": [account]}, environ={})
    db = create_database(config.database)
    await migrate.upgrade(db)
    committed = asyncio.Event()
    fetchers = MailboxFetchers(config, db, lambda count: committed.set())
    task = asyncio.create_task(fetchers.run())
    latencies = []
    try:
        await asyncio.sleep(1.0)  # connected and idling
        for raw in raws[:samples]:
            committed.clear()
            await asyncio.to_thread(server.append, user, "bench", raw)
            appended = time.perf_counter()
            await asyncio.wait_for(committed.wait(), 30)
            latencies.append(time.perf_counter() - appended)
            await asyncio.sleep(0.1)
    finally:
        fetchers.request_stop()
        await task
        await db.close()
    return latencies


async def main_async(args: argparse.Namespace) -> int:
    raws = corpus(args.n, args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="pytrs-imap-bench-dovecot-"))
    server = DovecotServer.start(workdir)
    try:
        results = {e: await run_engine(e, server, raws, args) for e in args.engines.split(",")}
        latencies = sorted(await idle_latency(server, raws, 20))
        print(f"IDLE push, APPEND → inbox row over {len(latencies)} messages: "
              f"p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
              f"max {latencies[-1] * 1000:.0f} ms")  # fmt: skip
    finally:
        server.stop()
    target_met = all(r["inbox"] >= 500 for r in results.values())
    print("target ≥ 500 msg/s into the inbox:", "met" if target_met else "NOT met")
    return 0 if target_met else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=200, help="messages fetched per batch")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1/test")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
