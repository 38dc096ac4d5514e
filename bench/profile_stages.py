"""Where the daemon's CPU goes per accepted mail: a py-spy raw profile (`ingest.py --profile`)
split into the stages of the ingest path (issue 16) — SMTP protocol, inbox write, commit, claim,
parse, route, ticket write — plus what py-spy cannot tie to a stage.

Each sample is charged to the first stage found walking its stack from the innermost frame
outwards, so SQL built for a ticket counts as ticket write, and logging anywhere counts as
logging. Two kinds of sample have no stage in their stack and are shown as what they are:
  * SQLAlchemy's synchronous core runs in greenlets (`greenlet_spawn`), and asyncpg's calls
    are made from there; py-spy sees the greenlet's own stack only, not the coroutine that
    awaited it;
  * SQLite's C calls (statements, commits) run in aiosqlite's one thread per connection.
Threads blocked in a queue (aiosqlite waiting for work) are left out: py-spy's idle filter
misses them. The figures are CPU samples, not wall time: an fsync waiting on the disk is idle.

Imported by `bench/ingest.py` (run as `python bench/ingest.py`, which puts this directory on
the path), or run alone: `python bench/profile_stages.py PROFILE [--messages N]`. Not part of
pytrs.
"""

from __future__ import annotations

import argparse
import collections
import re
from collections.abc import Iterator
from pathlib import Path

SAMPLE_RATE = 200  # py-spy --rate of ingest.py's profile

# (stage, pattern on a frame "function (path/file.py:line)"), tried in order on each frame.
# The standard library's email package has no rule: the pytrs frame that called it decides, so
# a mail parsed outside the parse stage shows as "… (email package)" under that stage.
STARTUP = "start-up and shutdown"
INBOX_REPO = r"\(pytrs/schema/inbox_repo\.py"
RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (stage, re.compile("|".join(patterns)))
    for stage, patterns in (
        (
            STARTUP,
            [
                r"\(pytrs/(provisioning|schema/provision|schema/migrate\w*|preflight)\.py",
                r"^Daemon\._start |^Database\.close |^Runner\.(close|__exit__) ",
                r"\((argparse|gettext|tomllib/_parser)\.py",
            ],
        ),
        ("logging", [r"\((logging/|pytrs/runtime/logs\.py)"]),
        ("commit", [r"^\S*commit\S* \((sqlalchemy|aiosqlite|asyncpg)/"]),
        (
            "inbox write",
            [r"\(pytrs/gateway/inbox_writer\.py", r"^(store|with_keys|_ids_of) " + INBOX_REPO],
        ),
        (
            "SMTP protocol",
            [
                r"\((aiosmtpd/|pytrs/gateway/smtp(_data)?\.py)",
                r"\(asyncio/(streams|selector_events|sslproto|transports)\.py",
            ],
        ),
        (
            "claim",
            [
                r"\(pytrs/schema/claims\.py",
                r"^(lease_rows|load_leased|lock_claimed|release_dead_claims|next_due) "
                + INBOX_REPO,
            ],
        ),
        ("parse", [r"\(pytrs/parsers/"]),
        (
            "route",
            [
                r"\(pytrs/(routing/|schema/known_repo\.py)",
                r"\(pytrs/postmaster/(filter\w*|routing_setup|planning|agents|control)\.py",
                r"^in_flight " + INBOX_REPO,
            ],
        ),
        (
            "ticket write",
            [
                r"\(pytrs/(tickets/|responders/|postmaster/(apply|changes|batch)\.py)",
                r"\(pytrs/schema/(ticket_repo|escalation\w*|outbox\w*)\.py",
                r"^(mark_processed|defer) " + INBOX_REPO,
                r"^PostmasterWorker\._(process|respond|assign_numbers) ",
            ],
        ),
    )
)
EMAIL_PACKAGE = "(email/"
PYTRS = "(pytrs/"
DATABASE_LAYER = re.compile(r"\((sqlalchemy|asyncpg)/")
AIOSQLITE_THREAD = "_connection_worker_thread (aiosqlite/core.py"
# aiosqlite's thread: this line waits for the next call (idle), the other runs it.
AIOSQLITE_WAIT = re.compile(r"_connection_worker_thread \(aiosqlite/core\.py:59\)")
# The loop in C with no Python frame above it: under asyncio.run, or under `run_daemon`'s own
# loop (the daemon, and a worker child forked from it).
EVENT_LOOP = re.compile(
    r"^(Runner\.run|run|run_until_complete) \((asyncio/runners|uvloop/__init__|asyncio/base_events)"
    r"|^run_daemon \(pytrs/daemon\.py"
)
# A pool thread running C with no Python frame: SQLite's COMMIT (schema/sqlite_inline runs it
# in the connection's thread), or the hashing of a big mail.
POOL_THREAD = re.compile(r"^run \(concurrent/futures/thread\.py")
UNSEEN_SQLALCHEMY = "SQLAlchemy/asyncpg in greenlets (caller not visible)"
SQLITE_THREAD = "SQLite in threads (commits; with aiosqlite every call)"
LOOP = "event loop itself (scheduling, socket I/O in C)"
OTHER = "other (scheduler, supervision, metrics)"
IMPORTS = "start-up imports"
IDLE = "idle (aiosqlite waiting for work)"
ORDER = (
    "SMTP protocol", "inbox write", "commit", "claim", "parse", "route", "ticket write",
    "logging", UNSEEN_SQLALCHEMY, SQLITE_THREAD, LOOP, OTHER,
)  # fmt: skip


def read_raw(path: Path) -> Iterator[tuple[list[str], int, bool]]:
    """(frames root-first, sample count, whether a child of the daemon took it) per line of a
    py-spy `--format raw --subprocesses` file (a child's stack starts with two "process")."""
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        parts = stack.split(";")
        child = sum(part.startswith("process ") for part in parts) > 1
        frames = [f for f in parts if not f.startswith(("process ", "thread "))]
        if frames:
            yield frames, int(count), child


def stage_of(frames: list[str]) -> str:
    if any("importlib._bootstrap" in frame for frame in frames):
        return IMPORTS
    if AIOSQLITE_WAIT.search(frames[-1]):
        return IDLE
    for frame in reversed(frames):
        for stage, pattern in RULES:
            if pattern.search(frame):
                if stage != "parse" and any(EMAIL_PACKAGE in f for f in frames):
                    return f"{stage} (email package)"
                return stage
    if any(AIOSQLITE_THREAD in frame for frame in frames) or POOL_THREAD.search(frames[-1]):
        return SQLITE_THREAD
    if not any(PYTRS in frame for frame in frames) and any(
        DATABASE_LAYER.search(frame) for frame in frames
    ):
        return UNSEEN_SQLALCHEMY
    if EVENT_LOOP.search(frames[-1]):
        return LOOP
    return OTHER


def stages(path: Path) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Samples by stage: all of them, and those taken in the daemon's worker children."""
    counts: collections.Counter[str] = collections.Counter()
    in_children: collections.Counter[str] = collections.Counter()
    for frames, count, child in read_raw(path):
        stage = stage_of(frames)
        counts[stage] += count
        if child:
            in_children[stage] += count
    return counts, in_children


def print_stages(path: Path, messages: int) -> None:
    """The table: samples, share of the daemon's ingest CPU, CPU ms per accepted mail."""
    counts, in_children = stages(path)
    left_out = (IMPORTS, STARTUP, IDLE)
    shown = [*ORDER, *sorted(set(counts) - {*ORDER, *left_out})]
    work = sum(counts[stage] for stage in shown)
    if not work:
        print(f"profile {path}: no samples")
        return
    print(f"\nstages of {path.name} ({messages} mails; CPU samples at {SAMPLE_RATE}/s,")
    print(
        f"{counts[IMPORTS] + counts[STARTUP]} start-up/shutdown and {counts[IDLE]} idle samples "
        "left out):"
    )
    print(
        f"  {'stage':<58} {'samples':>7} {'share':>6} {'CPU ms/mail':>11} "
        f"{'… in daemon':>11} {'… in children':>13}"
    )

    def ms(n: int) -> float:
        return 1000 * n / SAMPLE_RATE / messages

    for stage in shown:
        n, c = counts[stage], in_children[stage]
        print(
            f"  {stage:<58} {n:7d} {100 * n / work:5.1f}% {ms(n):11.3f} {ms(n - c):11.3f} "
            f"{ms(c):13.3f}"
        )
    children = sum(in_children[stage] for stage in shown)
    print(
        f"  {'total':<58} {work:7d} {100.0:5.1f}% {ms(work):11.3f} {ms(work - children):11.3f} "
        f"{ms(children):13.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--messages", type=int, default=1, help="mails the run accepted")
    args = parser.parse_args()
    print_stages(args.profile, args.messages)


if __name__ == "__main__":
    main()
