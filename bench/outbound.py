"""Outbound benchmark (issue 6): outbox rows → signed and accepted by a local relay, messages/s.

What it measures, per database engine and signing mode: N composed mails are enqueued, then an
``OutboxSender`` (the daemon's, same configuration path) claims, DKIM-signs, sends and records
them through a local aiosmtpd sink that accepts everything; the rate is N / (sender start →
every row committed as sent). Modes: ``unsigned``; ``rsa2048`` and ``ed25519`` (dkimpy's
signature, the key operation by OpenSSL, as pytrs signs); ``rsa2048-dkimpy`` signs with
dkimpy's pure-Python RSA instead, to show why pytrs does not (opt-in with --modes).

The sink runs in a process of its own (as a real relay would), so sender and relay share the
machine's cores. The run fails (exit 1) unless the sink received exactly N messages and every
row ended "sent"; the first signed message of each run is verified with dkimpy against the
test key.

Usage: python bench/outbound.py [--n 3000] [--engines sqlite,postgresql]
           [--modes unsigned,rsa2048,ed25519] [--connections 2] [--batch 20] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from pytrs.config import Config, DkimKeyConfig, parse_config
from pytrs.outbound.dkim import DkimKey, DkimSigner
from pytrs.outbound.sender import OutboxSender
from pytrs.responders.message import AUTO_REPLIED, Composer, Draft, Parent
from pytrs.schema import migrate, outbox_repo
from pytrs.schema.database import Database, create_database

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1/test"
MODES = ("unsigned", "rsa2048", "ed25519", "rsa2048-dkimpy")
LOOP_SECRET = "benchmark-loop-secret-0123456789"
BODY = (
    "Dear customer,\n\nthank you for your message. We have opened a ticket for it and will get\n"
    "back to you as soon as possible. Please keep the ticket number in the subject of any\n"
    "reply, so that it reaches the right people.\n\nYour support team\n"
)


# --- the sink relay (its own process) ------------------------------------------------------


def serve_sink(sample: Path) -> None:
    """Accept every message, count them, keep the first one; print the count on SIGTERM."""
    from aiosmtpd.smtp import SMTP

    class Sink:
        count = 0
        first = b""

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            if Sink.count == 0:
                Sink.first = envelope.original_content
            Sink.count += 1
            return "250 2.0.0 queued"

        async def handle_exception(self, error: Exception) -> str:
            return "451 4.3.0 sink error"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Sink(), hostname="sink.bench", decode_data=False), "127.0.0.1", 0
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        print(Sink.count, flush=True)

    asyncio.run(main())
    sample.write_bytes(Sink.first)


@contextlib.contextmanager
def sink_process(sample: Path) -> Any:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-sink", str(sample)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    received: list[int] = []
    try:
        yield port, received
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        received.append(int(out.strip() or -1))


# --- signers -------------------------------------------------------------------------------


def make_signer(mode: str, scratch: Path) -> tuple[DkimSigner, DkimKey | None]:
    if mode == "unsigned":
        return DkimSigner(), None
    path = scratch / f"{mode}.pem"
    key: Any = (
        ed25519.Ed25519PrivateKey.generate()
        if mode == "ed25519"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signer = DkimSigner.from_config([DkimKeyConfig("example.com", "bench", str(path))])
    dkim_key = signer.keys["example.com"]
    if mode == "rsa2048-dkimpy":
        signer = PureDkimpySigner(dkim_key)
    return signer, dkim_key


class PureDkimpySigner(DkimSigner):
    """dkim.sign as it comes, RSA in pure Python: the comparison pytrs's signer is made for."""

    def __init__(self, key: DkimKey) -> None:
        super().__init__([key])
        self.pem = key.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    def sign(self, raw: bytes, envelope_from: str = "", now: float | None = None) -> bytes:
        header = dkim.sign(
            raw, b"bench", b"example.com", self.pem, canonicalize=(b"relaxed", b"relaxed")
        )
        return bytes(header) + raw


# --- one run -------------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    engine: str
    mode: str
    n: int
    seconds: float = 0.0
    rate: float = 0.0
    received: int = 0
    sent_rows: int = 0
    verified: bool | None = None
    error: str = ""


async def open_database(engine: str, args: argparse.Namespace, scratch: Path) -> tuple[Any, Any]:
    if engine == "sqlite":
        return {"url": f"sqlite+aiosqlite:///{scratch / f'bench-{secrets.token_hex(3)}.db'}"}, None
    schema = f"pytrs_obench_{secrets.token_hex(4)}"
    admin = create_async_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return {"url": args.pg_url, "schema": schema}, (admin, schema)


async def fill(db: Database, config: Config, n: int) -> None:
    composer = Composer.from_config(config)
    for start in range(0, n, 500):
        async with db.transaction() as conn:
            for i in range(start, min(start + 500, n)):
                mail = composer.compose(
                    Draft(
                        sender="Example Support <support@example.com>",
                        to=[f"Customer {i} <customer{i}@customer.example>"],
                        subject=f"Printer {i} on fire",
                        text=BODY,
                        tn=f"2026112510{i:06d}",
                        answering=Parent(f"<{i}.question@customer.example>"),
                        automatic=AUTO_REPLIED,
                    )
                )
                await outbox_repo.enqueue(conn, mail, kind="auto-reply")


async def one_run(engine: str, mode: str, args: argparse.Namespace, scratch: Path) -> Result:
    result = Result(engine, mode, args.n)
    database, admin = await open_database(engine, args, scratch)
    sample = scratch / f"sample-{engine}-{mode}.eml"
    signer, key = make_signer(mode, scratch)
    try:
        with sink_process(sample) as (port, received):
            config = parse_config(
                {
                    "database": database,
                    "outbound": {
                        "relay": f"127.0.0.1:{port}", "loop_secret": LOOP_SECRET,
                        "connections": args.connections, "batch_size": args.batch,
                        "helo_name": "pytrs.bench",
                    },
                },
                environ={},
            )  # fmt: skip
            db = create_database(config.database)
            try:
                await migrate.upgrade(db)
                await fill(db, config, args.n)
                sender = OutboxSender(config, db, signer)
                started = time.perf_counter()
                task = asyncio.create_task(sender.run())
                while (await outbox_repo.counts(db)).get("sent", 0) < args.n:
                    if task.done():
                        task.result()
                        raise RuntimeError("the sender stopped early")
                    if time.perf_counter() - started > args.timeout:
                        raise TimeoutError(f"not all sent within {args.timeout} s")
                    await asyncio.sleep(0.02)
                result.seconds = time.perf_counter() - started
                sender.stop()
                await asyncio.wait_for(task, 30)
                result.sent_rows = (await outbox_repo.counts(db)).get("sent", 0)
            finally:
                await db.close()
        result.received = received[0]
        result.rate = args.n / result.seconds
        if key is not None:
            record = key.dns_record().encode()
            result.verified = bool(
                dkim.verify(sample.read_bytes(), dnsfunc=lambda name, timeout=5: record)
            )
        if result.received != args.n or result.sent_rows != args.n or result.verified is False:
            result.error = "lost, duplicated or unverifiable mail"
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        if admin is not None:
            engine_, schema = admin
            async with engine_.connect() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await engine_.dispose()
    return result


def sign_rate(mode: str, scratch: Path, rounds: int = 300) -> float:
    """Signatures/s of one core for `mode`, on the benchmark's mail."""
    signer, _key = make_signer(mode, scratch)
    config = parse_config({"outbound": {"loop_secret": LOOP_SECRET}}, environ={})
    raw = (
        Composer.from_config(config)
        .compose(Draft("Support <support@example.com>", ["c@customer.example"], "x", BODY))
        .raw
    )
    start = time.perf_counter()
    for _ in range(rounds):
        signer.sign(raw)
    return rounds / (time.perf_counter() - start)


# --- report --------------------------------------------------------------------------------


def report(results: list[Result], sign_rates: dict[str, float]) -> None:
    header = f"{'engine':<11}{'mode':<16}{'messages':>9}{'seconds':>9}{'msg/s':>9}"
    header += f"{'ms/msg':>8}{'sign/s 1 core':>15}  check"
    print("\n" + header)
    for r in results:
        if r.error and not r.seconds:
            print(f"{r.engine:<11}{r.mode:<16}ERROR {r.error}")
            continue
        check = "ok" if not r.error else f"FAIL ({r.error})"
        if r.verified:
            check += ", DKIM verified"
        signing = f"{sign_rates[r.mode]:,.0f}" if r.mode in sign_rates else "-"
        print(
            f"{r.engine:<11}{r.mode:<16}{r.n:>9}{r.seconds:>9.2f}{r.rate:>9,.0f}"
            f"{1000 / r.rate:>8.2f}{signing:>15}  {check}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="mails per run")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--modes", default="unsigned,rsa2048,ed25519", help=", ".join(MODES))
    parser.add_argument("--connections", type=int, default=2, help="[outbound] connections")
    parser.add_argument("--batch", type=int, default=20, help="[outbound] batch_size")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--serve-sink", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


async def run_all(args: argparse.Namespace) -> list[Result]:
    scratch = Path(tempfile.mkdtemp(prefix="pytrs-outbound-bench-"))
    results = []
    for engine in args.engines.split(","):
        for mode in args.modes.split(","):
            print(f"{engine} {mode}: {args.n} mails …", flush=True)
            results.append(await one_run(engine, mode, args, scratch))
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_sink:
        serve_sink(args.serve_sink)
        return 0
    unknown = set(args.modes.split(",")) - set(MODES)
    if unknown:
        raise SystemExit(f"unknown mode(s): {', '.join(sorted(unknown))}")
    print(f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {args.loop} loop")
    runner: Any = asyncio.run
    if args.loop == "uvloop":
        import uvloop

        runner = uvloop.run
    results = runner(run_all(args))
    scratch = Path(tempfile.mkdtemp(prefix="pytrs-outbound-sign-"))
    rates = {m: sign_rate(m, scratch) for m in args.modes.split(",") if m != "unsigned"}
    report(results, rates)
    if args.json:
        data = {"results": [dataclasses.asdict(r) for r in results], "sign_per_s": rates}
        args.json.write_text(json.dumps(data, indent=2))
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
