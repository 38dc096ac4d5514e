"""The gateway's accept path alone: CPU per accepted mail of SMTP + inbox write, no worker.

`ingest.py` measures the whole daemon; this runs only what a gateway process runs per mail
(the aiosmtpd session, `IngressHandler`, `InboxWriter` and the inbox INSERT) on the daemon's
event loop (uvloop), fed by `smtp_client.send_corpus` in a child process, and reports the
gateway process's CPU time per mail (all its threads, so aiosqlite's too). CPU time, not
wall time: the figure stays comparable on a busy machine.

    python bench/accept.py --n 2000 [--engine sqlite|postgresql] [--profile FILE.prof]

`--no-store` answers 250 without the inbox write (the protocol's own cost) and `--noop` runs
the no-op server of `noop_smtp.py` in this process instead (the floor). The line also gives
the CPU of each thread and the time spent in the garbage collector.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import multiprocessing
import os
import time
from pathlib import Path

import uvloop
from aiosmtpd.smtp import SMTP
from noop_smtp import Noop
from scratch import scratch_database
from smtp_client import RECIPIENT, send_corpus
from worker import corpus

from pytrs.config import Config, parse_config
from pytrs.gateway.addresses import AddressBook
from pytrs.gateway.inbox_writer import InboxWriter
from pytrs.gateway.smtp import IngressHandler, start_server
from pytrs.provisioning import provision
from pytrs.schema import migrate
from pytrs.schema.database import Database, create_database
from pytrs.vocabulary.inbox import InboxItem


async def noop_server() -> asyncio.Server:
    """The no-op aiosmtpd server of `noop_smtp.py`, in this process: the floor to compare with."""

    def factory() -> SMTP:
        return SMTP(
            Noop(), hostname="bench.example.com", decode_data=False, enable_SMTPUTF8=True,
            data_size_limit=26214400, timeout=300,
        )  # fmt: skip

    return await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)


class _Unstored:
    """Stands in for the InboxWriter: the protocol's own cost, without the inbox write."""

    def __init__(self) -> None:
        self.next_id = 0

    async def store(self, items: list[InboxItem]) -> list[int]:
        self.next_id += len(items)
        return list(range(self.next_id - len(items) + 1, self.next_id + 1))


def client(port: int, raws: list[bytes], connections: int) -> None:
    shares = send_corpus(("127.0.0.1", port), raws, connections)
    errors = [error for share in shares for error in share.errors]
    if errors:
        raise SystemExit(f"{len(errors)} client errors, first: {errors[0]}")


async def run(args: argparse.Namespace) -> None:
    raws = corpus(args.n, args.seed)
    async with scratch_database(args.engine, args.pg_url, "pytrs_abench") as database:
        config = parse_config(
            {
                "database": database,
                "queues": [{"name": "Support"}],
                "system_addresses": [{"address": RECIPIENT, "queue": "Support"}],
            },
            environ={},
        )
        db = create_database(config.database)
        try:
            await migrate.upgrade(db)
            await provision(db, config)
            await measure(args, raws, config, db)
        finally:
            await db.close()


async def measure(
    args: argparse.Namespace, raws: list[bytes], config: Config, db: Database
) -> None:
    addresses = AddressBook()
    await addresses.reload(db)
    smtp = config.smtp
    writer = InboxWriter(db, batch_max=smtp.commit_batch_max, delay_ms=smtp.commit_delay_ms)
    writer_task = asyncio.create_task(writer.run())
    if args.noop:
        server = await noop_server()
    elif args.no_store:
        handler = IngressHandler(addresses, _Unstored(), source="smtp", listener="bench")  # type: ignore[arg-type]
        server = await start_server(handler, ("127.0.0.1", 0), hostname="bench.example.com")
    else:
        handler = IngressHandler(addresses, writer, source="smtp", listener="bench")
        server = await start_server(handler, ("127.0.0.1", 0), hostname="bench.example.com")
    port = server.sockets[0].getsockname()[1]
    # A warm-up pass (statement caches, first connections), not counted.
    await asyncio.to_thread(client, port, raws[: args.connections * 4], args.connections)
    profiler = cProfile.Profile() if args.profile else None
    collections = GcClock()
    threads, cpu, wall = thread_cpu(), time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    process = multiprocessing.get_context("spawn").Process(
        target=client, args=(port, raws, args.connections)
    )
    process.start()
    await asyncio.to_thread(process.join)
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    threads = {name: t - threads.get(name, 0.0) for name, t in thread_cpu().items()}
    collections.stop()
    server.close()
    writer_task.cancel()
    if process.exitcode:
        raise SystemExit(f"client failed ({process.exitcode})")
    print(
        f"{args.engine}: {len(raws)} mails, gateway CPU {cpu * 1000 / len(raws):.3f} ms/mail, "
        f"{len(raws) / wall:.0f} msg/s wall; by thread (ms/mail): "
        + ", ".join(f"{k} {v * 1000 / len(raws):.3f}" for k, v in threads.items() if v > 0)
        + f"; gc {collections.report(len(raws))}"
    )


class GcClock:
    """Time spent in the garbage collector by generation (gc.callbacks), from now to stop()."""

    def __init__(self) -> None:
        self.spent = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self._start = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.thread_time()
        else:
            self.spent[info["generation"]] += time.thread_time() - self._start
            self.count[info["generation"]] += 1

    def stop(self) -> None:
        gc.callbacks.remove(self._on_gc)

    def report(self, mails: int) -> str:
        return ", ".join(
            f"gen{g} {self.count[g]}x {self.spent[g] * 1000 / mails:.3f} ms/mail" for g in range(3)
        )


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each thread of this process, by name (and id)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a thread that ended meanwhile (its CPU is not counted)
            continue
        found[f"{name}/{task.name}"] = (int(fields[11]) + int(fields[12])) / tick
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1/test")
    parser.add_argument("--no-store", action="store_true", help="pytrs's SMTP, no inbox write")
    parser.add_argument("--noop", action="store_true", help="the no-op server instead")
    parser.add_argument("--profile", help="write a cProfile of the gateway's loop thread here")
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
