"""Ingest benchmark (SPEC S12): SMTP in → ticket article committed, per database engine.

What it measures, for each engine (a fresh SQLite file, or a throw-away PostgreSQL schema):
  * end-to-end messages/s: from the first SMTP transaction until every message of the corpus is
    a committed ``article_data_mime`` row and no inbox row is pending;
  * SMTP acceptance messages/s: from the first transaction until the last "250";
  * acceptance latency (p50/p99/max): time from `sendmail()` start to its return, per message;
  * peak RSS of the daemon and its child processes (`[postmaster] processes`), summed, read
    from /proc every 100 ms;
  * the transport ceiling (issue 16): the same client, corpus and connection count against a
    no-op aiosmtpd server (250 to everything, nothing stored; `noop_smtp.py`) in a process of
    its own on the event loop the daemon picks (uvloop or asyncio), just before the daemon
    starts; the end-to-end rate is printed as a share of it (`× ceiling`). `--no-ceiling`
    skips it;
  * the ratio of the end-to-end rate to a bare single-core `email.message_from_bytes` parse of
    the same corpus bytes, measured in this process in the same run (best of 3).

With `--paced 100,500,1000` each engine also runs open loop at each of these rates, on a fresh
database and daemon: mail i is due at i / rate, a free connection takes the next due mail, and
its latency runs from the due time to the final DATA reply, so a stall is charged for the queue
it causes (`smtp_client.py`). The no-op server gets the same paced traffic in the same run, and
both latencies are printed side by side. A paced run sends min(messages, rate ×
`--paced-seconds`) mails; issue 16's latency target is at 500/s with `--connections 50`.

With `--escalations both` each engine runs twice on fresh databases, without and then with the
Support queue escalating (an office-hours calendar, first response, update and solution budgets,
a warning at 80 %), and the ratio of the two end-to-end rates is printed: issue 14 asks for
ingest with escalations within 10 % of ingest without (`--escalations on` runs only the latter).

The daemon runs as a child process (`python -m pytrs run`) exactly as in production, fed by
`--connections` smtplib clients in threads of this process; both share the machine's cores,
which is the set-up the S12 figures are quoted for. Exit status is non-zero when a message is
lost (refused, or never becomes an article), quarantined, or the daemon does not stop cleanly.

Usage: python bench/ingest.py [--n 5000] [--seed 1] [--connections 8]
           [--engines sqlite,postgresql] [--pg-url URL] [--json OUT] [--profile]
           [--escalations off|on|both] [--no-ceiling] [--paced RATES [--paced-seconds S]]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import email
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil
from noop_smtp import NoopServer, daemon_loop
from profile_stages import print_stages
from smtp_client import RECIPIENT, Share, send_corpus, send_paced

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "out"
DEFAULT_GEN = HERE.parents[1] / "shared" / "bench" / "gen_corpus.py"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1/test"
ENGINES = ("sqlite", "postgresql")

POLL_SECONDS = 0.05
# /proc is read this often for the daemon's memory (its process tree).
RSS_SECONDS = 0.1
START_TIMEOUT = 60.0
LISTENING = re.compile(r"SMTP listening on \('([^']+)', (\d+)")
# Written by the daemon after an orderly shutdown, just before run() returns 0.
CLEAN_STOP = "pytrs stopped"


# --- corpus --------------------------------------------------------------------------------


def load_corpus(args: argparse.Namespace, scratch: Path) -> tuple[list[bytes], int | None]:
    """The corpus as sent over SMTP (CRLF line endings, in file-name = chronological order),
    and the number of threads in it when the generator's MANIFEST.json says so."""
    directory = args.corpus
    if directory is None:
        directory = scratch / "corpus"
        n = args.n or 5000
        print(f"generating {n} messages (seed {args.seed}) with {args.gen} …", flush=True)
        cmd = [
            sys.executable,
            str(args.gen),
            "--out",
            str(directory),
            "--n",
            str(n),
            "--seed",
            str(args.seed),
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    files = sorted(Path(directory).glob("*.eml"))
    if args.n:
        files = files[: args.n]
    if not files:
        raise SystemExit(f"no .eml files in {directory}")
    # Files on disk have LF endings as in a spool; an MTA sends CRLF, and that is what the
    # daemon stores and parses, so the bare-parse baseline uses the same bytes.
    return [crlf(path.read_bytes()) for path in files], expected_threads(directory, len(files))


def expected_threads(directory: Path, n: int) -> int | None:
    # One ticket per thread is what correct threading yields; the figure only holds for the
    # whole corpus the manifest describes.
    try:
        manifest = json.loads((Path(directory) / "MANIFEST.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest.get("threads") if manifest.get("n") == n else None


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def bare_parse_rate(corpus: list[bytes], rounds: int = 3) -> float:
    """Messages/s of `email.message_from_bytes` (compat32) on one core, best of `rounds`."""
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        for raw in corpus:
            email.message_from_bytes(raw)
        best = min(best, time.perf_counter() - start)
    return len(corpus) / best


# --- databases -----------------------------------------------------------------------------


@dataclass
class Counts:
    articles: int
    states: dict[str, int]
    tickets: int = 0
    escalating: int = 0  # tickets with a deadline (escalation_time > 0)

    def state(self, name: str) -> int:
        return self.states.get(name, 0)


# Customer articles only: with --auto-reply each mail also gets a system article.
COUNT_ARTICLES = "SELECT count(*) FROM article WHERE article_sender_type_id = 3"
COUNT_STATES = "SELECT state, count(*) FROM inbox_message GROUP BY state"
COUNT_TICKETS = "SELECT count(*) FROM ticket"
COUNT_ESCALATING = "SELECT count(*) FROM ticket WHERE escalation_time > 0"


class Store(Protocol):
    """A fresh database for one engine, and a side connection that counts progress."""

    url: str
    schema: str

    def counts(self, *, tickets: bool = False) -> Counts: ...

    def close(self) -> None: ...


class SqliteStore:
    def __init__(self, scratch: Path) -> None:
        self.path = scratch / "bench.db"
        self.url = f"sqlite+aiosqlite:///{self.path}"
        self.schema = ""
        self._conn: sqlite3.Connection | None = None

    def counts(self, *, tickets: bool = False) -> Counts:
        # Opened on first use, after `db upgrade` created the file. In autocommit mode each
        # SELECT is its own short read transaction, so the poller never pins an old WAL
        # snapshot and never holds back the daemon's checkpoints.
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn = self._conn
        return Counts(
            articles=conn.execute(COUNT_ARTICLES).fetchone()[0],
            states=dict(conn.execute(COUNT_STATES).fetchall()),
            tickets=conn.execute(COUNT_TICKETS).fetchone()[0] if tickets else 0,
            escalating=conn.execute(COUNT_ESCALATING).fetchone()[0] if tickets else 0,
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class PostgresStore:
    """A schema `pytrs_bench_<random>` created now and dropped (CASCADE) by `close()`."""

    def __init__(self, sa_url: str) -> None:
        import asyncpg

        self.url = sa_url
        self.schema = f"pytrs_bench_{secrets.token_hex(4)}"
        # The bench is synchronous; one private loop drives its single asyncpg connection.
        self._runner = asyncio.Runner()
        dsn = re.sub(r"^postgresql\+\w+://", "postgresql://", sa_url)
        try:
            self._conn = self._runner.run(asyncpg.connect(dsn, timeout=10))
            self._runner.run(self._conn.execute(f'CREATE SCHEMA "{self.schema}"'))
            self._runner.run(self._conn.execute(f'SET search_path TO "{self.schema}"'))
        except BaseException:
            self._runner.close()
            raise

    def counts(self, *, tickets: bool = False) -> Counts:
        run, conn = self._runner.run, self._conn
        return Counts(
            articles=run(conn.fetchval(COUNT_ARTICLES)),
            states={row[0]: row[1] for row in run(conn.fetch(COUNT_STATES))},
            tickets=run(conn.fetchval(COUNT_TICKETS)) if tickets else 0,
            escalating=run(conn.fetchval(COUNT_ESCALATING)) if tickets else 0,
        )

    def close(self) -> None:
        try:
            self._runner.run(self._conn.execute(f'DROP SCHEMA "{self.schema}" CASCADE'))
            self._runner.run(self._conn.close())
        finally:
            self._runner.close()


def open_store(engine: str, args: argparse.Namespace, scratch: Path) -> Store:
    return SqliteStore(scratch) if engine == "sqlite" else PostgresStore(args.pg_url)


# --auto-reply: every new ticket gets a templated auto reply, stored as a system article and
# queued in the outbox (the relay is a closed port, so the sender only defers; the benchmark
# measures the postmaster's side). The daily limit is lifted so that every mail is answered.
AUTO_REPLY = """
[outbound]
relay = "127.0.0.1:9"
retry_backoff_seconds = 3600.0

[loop_protection]
max_auto_responses_per_address_per_day = 1000000

[[auto_responses]]
queue = "Support"
type = "auto reply"
subject = "Re: {{ article.subject }}"
body = \"\"\"Dear {{ customer.full_name }},

we received your mail and opened ticket {{ ticket.hook }}{{ ticket.tn }}.

{{ quoted }}
\"\"\"
"""


# --escalations: the Support queue escalates as a help desk's would, on office hours (two windows
# a day, holidays), so that every new ticket and every follow-up recomputes its deadlines with
# working-time arithmetic, not the 24/7 shortcut. No budget runs out during a run.
ESCALATING_QUEUE = """
[[queues]]
name = "Support"
calendar = "office"
first_response_minutes = 240
update_minutes = 480
solution_minutes = 2400
notify_before_percent = 80

[[calendars]]
name = "office"
timezone = "Europe/Berlin"
holidays = ["12-24", "12-25", "12-26", "12-31", "01-01", "05-01", "10-03"]

[calendars.hours]
mon = ["08:00-12:00", "13:00-17:00"]
tue = ["08:00-12:00", "13:00-17:00"]
wed = ["08:00-12:00", "13:00-17:00"]
thu = ["08:00-12:00", "13:00-17:00"]
fri = ["08:00-12:00", "13:00-17:00"]
"""
PLAIN_QUEUE = """
[[queues]]
name = "Support"
"""


def write_config(
    path: Path, store: Store, auto_reply: bool = False, escalations: bool = False
) -> None:
    # hostname is fixed so start-up never waits on a reverse DNS lookup for the FQDN.
    path.write_text(
        f"""\
[database]
url = {json.dumps(store.url)}
schema = {json.dumps(store.schema)}

[smtp]
listen = ["127.0.0.1:0"]
lmtp_listen = []
hostname = "bench.invalid"

[web]
listen = ""

[daemon]
log_level = "INFO"
"""
        + (ESCALATING_QUEUE if escalations else PLAIN_QUEUE)
        + f"""
[[system_addresses]]
address = "{RECIPIENT}"
queue = "Support"
"""
        + (AUTO_REPLY if auto_reply else "")
    )


# --- the daemon ----------------------------------------------------------------------------


def child_environ(overrides: list[str]) -> dict[str, str]:
    """This process's environment without PYTRS_* (they would override the config) + --env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTRS_")}
    for item in overrides:
        key, _, value = item.partition("=")
        env[key] = value
    return env


class DaemonProcess:
    """`python -m pytrs run` as a child, optionally wrapped by `py-spy record`."""

    def __init__(self, config: Path, log: Path, env: dict[str, str], spy: list[str]) -> None:
        self.log = log
        self.profiled = bool(spy)
        cmd = [*spy, sys.executable, "-m", "pytrs", "--config", str(config), "run"]
        with log.open("wb") as sink:
            self.popen = subprocess.Popen(
                cmd,
                env=env,
                cwd=config.parent,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        self.process: psutil.Process | None = None

    def wait_listening(self) -> tuple[str, int]:
        """The SMTP address from the log; raises RuntimeError if the daemon dies first."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log.read_text(errors="replace"))
            if match:
                self.process = self._pytrs_process()
                return match.group(1), int(match.group(2))
            if self.popen.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.popen.returncode}:\n{self.tail()}")
            time.sleep(POLL_SECONDS)
        raise RuntimeError(f"no 'SMTP listening' line within {START_TIMEOUT:.0f} s:\n{self.tail()}")

    def _pytrs_process(self) -> psutil.Process:
        # Under py-spy the daemon is py-spy's child: signals and RSS samples must go to it.
        top = psutil.Process(self.popen.pid)
        if not self.profiled:
            return top
        for child in top.children(recursive=True):
            if "pytrs" in " ".join(child.cmdline()):
                return child
        raise RuntimeError("py-spy started no pytrs process")

    def stop(self, timeout: float = 90.0) -> tuple[bool, str]:
        """SIGTERM the daemon and wait; returns (clean, how it ended)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.popen.wait(timeout=timeout)
        if not self.profiled:
            return code == 0, f"exit {code}"
        # py-spy exits 0 whatever its child returned; the daemon's own last words tell.
        clean = code == 0 and CLEAN_STOP in self.log.read_text(errors="replace")
        return clean, "clean stop (log)" if clean else f"py-spy exit {code}, no clean stop"

    def kill(self) -> None:
        """Last resort when the bench itself fails: leave no daemon behind."""
        if self.popen.poll() is None:
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(self.popen.pid).children(recursive=True):
                    child.kill()
            self.popen.kill()
            self.popen.wait()

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc/PID/task/TID/children (no scan of all of /proc;
    psutil's scan where the kernel lacks those files)."""
    if not Path(f"/proc/{pid}/task/{pid}/children").exists():
        with contextlib.suppress(psutil.Error):
            return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
        return [pid]
    tree, todo = [], [pid]
    while todo:
        member = todo.pop()
        tree.append(member)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{member}/task"):
                children = Path(f"/proc/{member}/task/{task}/children")
                with contextlib.suppress(OSError):
                    todo.extend(int(child) for child in children.read_text().split())
    return tree


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (0 when it has gone), from /proc/PID/statm."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def pss_bytes(pid: int) -> int:
    """Proportional set size of one process (0 when it has gone or the kernel lacks the
    file): each page it shares with n processes counts 1/n, from /proc/PID/smaps_rollup."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


class RssSampler(threading.Thread):
    """Peak resident set size of the daemon and every process under it (`[postmaster]
    processes` children), summed, read from /proc every RSS_SECONDS until stopped; also the
    most processes seen at once. A sum of RSS counts every page a process maps once per
    process, shared ones too: an upper bound. The peak sum of PSS counts a page shared by n
    processes 1/n in each, so the tree's pages once: what the machine actually gives the
    daemon (close to what systemd's cgroup charges it)."""

    def __init__(self, process: psutil.Process) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid = process.pid
        self.peak = 0
        self.peak_pss = 0
        self.processes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            tree = process_tree(self.pid)
            sizes = [size for size in map(rss_bytes, tree) if size]
            if not sizes:
                return  # the daemon has gone; its peak is already recorded
            self.peak = max(self.peak, sum(sizes))
            self.peak_pss = max(self.peak_pss, sum(map(pss_bytes, tree)))
            self.processes = max(self.processes, len(sizes))
            self._halt.wait(RSS_SECONDS)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


# --- waiting for the daemon ----------------------------------------------------------------


def wait_ingested(store: Store, expected: int, timeout: float) -> float:
    """Poll until `expected` articles exist and nothing is pending; returns when that was.

    Also returns when it can no longer happen (nothing pending) or at the timeout; the caller
    then finds the shortfall in the final counts.
    """
    deadline = time.perf_counter() + timeout
    settled_at: float | None = None
    while True:
        counts, now = store.counts(), time.perf_counter()
        pending = counts.state("pending")
        if pending == 0 and counts.articles >= expected:
            return now
        # Nothing pending yet articles missing: no further progress can come, but allow a
        # second in case inbox and article rows become visible in separate commits.
        if pending == 0:
            settled_at = settled_at or now
            if now - settled_at > 1.0:
                return now
        else:
            settled_at = None
        if now > deadline:
            return now
        time.sleep(POLL_SECONDS)


# --- one engine ----------------------------------------------------------------------------


@dataclass
class Result:
    engine: str
    messages: int
    escalations: bool = False  # the Support queue escalating (--escalations)
    pace: float = 0.0  # mails/s of a paced open-loop run (--paced); 0: closed loop
    articles: int = 0
    tickets: int = 0
    escalating: int = 0
    refused: int = 0
    quarantined: int = 0
    pending: int = 0
    e2e_seconds: float = math.nan
    smtp_seconds: float = math.nan
    e2e_rate: float = math.nan
    smtp_rate: float = math.nan
    latency_ms: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: float = math.nan
    peak_pss_mib: float = math.nan  # the same tree's proportional set size (shared pages once)
    peak_processes: int = 0  # the daemon and its children, the most at one time
    parse_rate: float = math.nan
    ratio_to_parse: float = math.nan
    # The no-op server driven the same way just before (noop_smtp.py; not with --no-ceiling).
    ceiling_loop: str = ""
    ceiling_rate: float = math.nan
    ceiling_latency_ms: dict[str, float] = field(default_factory=dict)
    ratio_to_ceiling: float = math.nan  # e2e rate / ceiling rate
    stopped_cleanly: bool = False
    stop: str = ""
    error: str = ""
    log: str = ""

    @property
    def ok(self) -> bool:
        lost = self.articles < self.messages or self.refused
        return not (lost or self.quarantined or self.error) and self.stopped_cleanly

    @property
    def accepted(self) -> int:
        return self.messages - self.refused

    @property
    def label(self) -> str:
        """The engine, marked when the queue escalates and with the pace of a paced run:
        "sqlite+esc", "postgresql@500"."""
        label = f"{self.engine}+esc" if self.escalations else self.engine
        return f"{label}@{self.pace:g}" if self.pace else label


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Traffic:
    """What the client saw of one server: answered mails, their span and latencies (ms)."""

    answered: int
    start: float  # the first transaction's start (closed loop) or the first due time (paced)
    last_250: float
    latency_ms: dict[str, float]

    @property
    def rate(self) -> float:
        return self.answered / (self.last_250 - self.start)


def traffic(shares: list[Share], server: str) -> Traffic:
    latencies = sorted(x * 1000 for share in shares for x in share.latencies)
    if not latencies:
        raise RuntimeError(f"the {server} accepted no message")
    percentiles = {f"p{p}": percentile(latencies, p) for p in (50, 99)}
    return Traffic(
        answered=len(latencies),
        start=min(share.first_start for share in shares),
        last_250=max(share.last_end for share in shares),
        latency_ms=percentiles | {"max": latencies[-1]},
    )


def record_traffic(result: Result, shares: list[Share], done_at: float, counts: Counts) -> None:
    seen = traffic(shares, "daemon")
    result.refused = result.messages - seen.answered
    result.smtp_seconds = seen.last_250 - seen.start
    result.e2e_seconds = done_at - seen.start
    result.smtp_rate = seen.rate
    result.e2e_rate = counts.articles / result.e2e_seconds
    result.latency_ms = seen.latency_ms
    result.articles, result.tickets = counts.articles, counts.tickets
    result.escalating = counts.escalating
    if result.escalations and not result.escalating:
        # Measuring "with escalations" where nothing computes them would flatter the ratio.
        result.error = "no ticket has an escalation time: the escalation index did not run"
    result.quarantined, result.pending = counts.state("quarantined"), counts.state("pending")
    result.ratio_to_parse = result.e2e_rate / result.parse_rate
    if not result.pace:  # a paced run's rate is its pace, on either server
        result.ratio_to_ceiling = result.e2e_rate / result.ceiling_rate


def run_engine(
    engine: str,
    corpus: list[bytes],
    args: argparse.Namespace,
    parse_rate: float,
    spy: list[str],
    escalations: bool = False,
    pace: float = 0.0,
) -> Result:
    result = Result(engine, len(corpus), escalations=escalations, pace=pace, parse_rate=parse_rate)
    with tempfile.TemporaryDirectory(prefix=f"pytrs-bench-{engine}-") as tmp:
        scratch = Path(tmp)
        try:
            store = open_store(engine, args, scratch)
        except Exception as exc:  # e.g. no PostgreSQL server: report it and go on
            result.error = f"cannot create the database: {exc!r}"
            return result
        try:
            measure(result, store, scratch, corpus, args, spy)
        except Exception as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            store.close()
    return result


# One rule per entry, cycled by rule number `n`: (match rows (header, value, negate), set rows,
# stop). Like an admin's real rule set, they mix Subject/From/To/Body regexes, EMAILADDRESS
# rows, negation, headers most mail lacks (List-Id, X-Spam-*), named captures, a rule reading a
# control header an earlier rule sets, and several rows per rule; almost all of them do not
# match a given mail. The last entry of each cycle is one of `_BENCH_MATCHING`, rules that do
# match part of the corpus (urgent subjects, one sender domain, order numbers, error codes).
_BENCH_RULES: list[tuple[list[tuple[str, str, bool]], list[tuple[str, str]], bool]] = [
    (
        [("From", r"EMAILADDRESS:.*@customer{n}\.example\.net", False)],
        [("X-PyTRS-CustomerNo", "C{n}")],
        False,
    ),
    (
        [("Subject", r"\b(?:invoice|rechnung|factura)\s+#?{n}\b", False)],
        [("X-PyTRS-Priority", "4 high")],
        False,
    ),
    (
        [("Body", r"contract number CN-{n}-[0-9]{{4}}", False)],
        [("X-PyTRS-CustomerNo", "CN-{n}")],
        False,
    ),
    ([("To", r"team{n}@", False)], [("X-PyTRS-Priority", "4 high")], False),
    (
        [
            ("From", r"@partner{n}\.example\.(?:com|org)>?$", False),
            ("Subject", r"order #(?<order>\d+)", False),
        ],
        [("X-PyTRS-Title", "Partner {n} order [**\\order**]")],
        True,
    ),
    (
        [
            ("From", r"EMAILADDRESS:.*@vendor{n}\.example\.com", False),
            ("Subject", r"newsletter|unsubscribe", True),
        ],
        [("X-PyTRS-Priority", "2 low")],
        False,
    ),
    ([("Body", r"ticket reference:?\s*(REF-{n}-\d+)", False)], [("X-PyTRS-Title", "[***]")], False),
    ([("Subject", r"\[PRJ-{n}\]", False)], [("X-PyTRS-CustomerNo", "PRJ-{n}")], False),
    (
        [("From", r"EMAILADDRESS:billing{n}@example\.com", False)],
        [("X-PyTRS-CustomerUser", "[***]")],
        False,
    ),
    (
        [("To", r"EMAILADDRESS:(?:sales|vertrieb){n}@helpdesk\.example\.com", False)],
        [("X-PyTRS-Priority", "3 normal")],
        False,
    ),
    (
        [("Subject", r"^(?:re|aw|fwd?|wg):\s*.*\bcase {n}\b", False)],
        [("X-PyTRS-Priority", "4 high")],
        False,
    ),
    ([("List-Id", r"<list{n}\.example\.org>", False)], [("X-PyTRS-Priority", "1 very low")], True),
    # Rows in Znuny's order (by header name), so the body is searched first.
    (
        [("Body", r"unsubscribe", True), ("Subject", r"alert {n}\b", False)],
        [("X-PyTRS-Priority", "5 very high")],
        False,
    ),
    ([("Subject", r"\bSR-0*{n}\b", False)], [("X-PyTRS-Priority", "4 high")], False),
    ([("X-OTRS-CustomerNo", r"^C{n}$", False)], [("X-PyTRS-Priority", "4 high")], False),
    (
        [("Body", r"serial(?: number)?:?\s*SN{n}[A-Z]{{2}}", False)],
        [("X-PyTRS-Title", "Device SN{n}")],
        False,
    ),
    (
        [("From", r"monitor{n}@", False), ("Auto-Submitted", r"auto-(?:generated|replied)", False)],
        [("X-PyTRS-Priority", "5 very high")],
        False,
    ),
    (
        [("X-Spam-Flag", r"^yes", False), ("X-Spam-Score", r"^(?:[1-9]\d|{n})\.", False)],
        [("X-PyTRS-Priority", "1 very low")],
        True,
    ),
    (
        [("Body", r"(?:kundennummer|customer (?:no|number)):?\s*K{n}\b", False)],
        [("X-PyTRS-CustomerNo", "K{n}")],
        False,
    ),
]
_BENCH_MATCHING: list[tuple[list[tuple[str, str, bool]], list[tuple[str, str]], bool]] = [
    ([("Subject", r"^(?:urgent|dringend)\b", False)], [("X-PyTRS-Priority", "4 high")], False),
    (
        [("From", r"EMAILADDRESS:.*@corp\.example\.org", False)],
        [("X-PyTRS-CustomerNo", "corp-{n}")],
        False,
    ),
    (
        [("Subject", r"order #(?<order>\d+)", False)],
        [("X-PyTRS-Title", "Order [**\\order**] ({n})")],
        False,
    ),
    (
        [
            ("Body", r"error code(?: shown)?(?: was)?:?\s*(E\d+)", False),
            ("From", r"EMAILADDRESS:.*@helpdesk\.example\.com", True),
        ],
        [("X-PyTRS-Title", "Error [***] ({n})")],
        False,
    ),
]


def bench_rules(count: int) -> str:
    """`count` postmaster rules of the everyday kinds (`_BENCH_RULES`): most of them, like most
    of an admin's rules, do not match a given mail; one in twenty matches part of the corpus."""
    cycle = len(_BENCH_RULES) + 1
    lines = []
    for n in range(count):
        slot = n % cycle
        if slot < len(_BENCH_RULES):
            match, sets, stop = _BENCH_RULES[slot]
        else:
            match, sets, stop = _BENCH_MATCHING[(n // cycle) % len(_BENCH_MATCHING)]
        # TOML literal strings ('…') take the backslashes of the patterns as they are.
        rows = ", ".join(
            f"{{ header = \"{h}\", value = '{v.format(n=n)}', not = {str(neg).lower()} }}"
            for h, v, neg in match
        )
        actions = ", ".join(f"{{ header = \"{h}\", value = '{v.format(n=n)}' }}" for h, v in sets)
        lines += [
            "[[filters]]", f'name = "{n:04d}-bench"', f"stop = {str(stop).lower()}",
            f"match = [ {rows} ]", f"set = [ {actions} ]", "",
        ]  # fmt: skip
    return "\n".join(lines)


def measure(
    result: Result,
    store: Store,
    scratch: Path,
    corpus: list[bytes],
    args: argparse.Namespace,
    spy: list[str],
) -> None:
    config, env = scratch / "pytrs.toml", child_environ(args.env)
    write_config(config, store, args.auto_reply, result.escalations)
    upgrade = [sys.executable, "-m", "pytrs", "--config", str(config), "db", "upgrade"]
    done = subprocess.run(upgrade, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"db upgrade failed:\n{done.stdout}{done.stderr}")
    if args.rules:
        rules = scratch / "rules.toml"
        rules.write_text(bench_rules(args.rules))
        load = [sys.executable, "-m", "pytrs", "--config", str(config), "filters", "import",
                str(rules)]  # fmt: skip
        done = subprocess.run(load, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"filters import failed:\n{done.stdout}{done.stderr}")
    send = client_for(result.pace, corpus, args.connections)
    if args.ceiling:
        measure_ceiling(result, config, env, send)
    log = OUT_DIR / f"daemon-{result.label}.log"
    result.log = str(log)
    daemon = DaemonProcess(config, log, env, spy)
    try:
        address = daemon.wait_listening()
        assert daemon.process is not None
        sampler = RssSampler(daemon.process)
        sampler.start()
        shares = send(address)
        done_at = wait_ingested(store, len(corpus) - failed_count(shares), args.timeout)
        record_traffic(result, shares, done_at, store.counts(tickets=True))
        result.stopped_cleanly, result.stop = daemon.stop()
        result.peak_rss_mib = sampler.stop() / 2**20
        result.peak_pss_mib = sampler.peak_pss / 2**20
        result.peak_processes = sampler.processes
        errors = [e for share in shares for e in share.errors]
        if errors:
            smtp = f"{len(errors)} SMTP error(s), first: {errors[0]}"
            result.error = f"{result.error}; {smtp}" if result.error else smtp
    finally:
        daemon.kill()


def client_for(
    pace: float, corpus: list[bytes], connections: int
) -> Callable[[tuple[str, int]], list[Share]]:
    """The traffic of one run, to point at the daemon or at the no-op server: the corpus closed
    loop, or paced at `pace` mails/s."""
    if pace:
        return lambda address: send_paced(address, corpus, connections, pace)
    return lambda address: send_corpus(address, corpus, connections)


def measure_ceiling(
    result: Result,
    config: Path,
    env: dict[str, str],
    send: Callable[[tuple[str, int]], list[Share]],
) -> None:
    """The same traffic against the no-op server on the daemon's event loop, just before the
    daemon starts (so both see the machine in the same state)."""
    loop = daemon_loop(config, env)
    server = NoopServer(loop, env)
    with server as address:
        shares = send(address)
    seen = traffic(shares, "no-op server")
    problems = [e for share in shares for e in share.errors]
    if problems or server.received != seen.answered:
        # The client or the machine failed, not pytrs: a ceiling from this would be wrong.
        raise RuntimeError(
            f"no-op server run: {len(problems)} SMTP error(s) {problems[:1]}, "
            f"{seen.answered} answered, {server.received} counted by the server"
        )
    result.ceiling_loop = loop
    result.ceiling_rate = seen.rate
    result.ceiling_latency_ms = seen.latency_ms


def failed_count(shares: list[Share]) -> int:
    return sum(len(share.errors) for share in shares)


# --- profiling -----------------------------------------------------------------------------


def py_spy_command(engine: str) -> list[str]:
    """The py-spy prefix for the daemon's command line, or [] if py-spy cannot profile here."""
    exe = Path(sys.executable).parent / "py-spy"
    found = str(exe) if exe.exists() else shutil.which("py-spy")
    if not found:
        print("profile: py-spy is not installed (pip install py-spy); not profiling")
        return []
    # A one-second trial shows whether ptrace is allowed here (containers often forbid it)
    # before the real run depends on it.
    with tempfile.TemporaryDirectory() as tmp:
        trial = [
            found,
            "record",
            "--format",
            "raw",
            "-o",
            f"{tmp}/trial.txt",
            "--",
            sys.executable,
            "-c",
            "sum(range(10**7)); import time; time.sleep(0.5)",
        ]
        probe = subprocess.run(trial, capture_output=True, text=True)
        if probe.returncode != 0 or not Path(f"{tmp}/trial.txt").exists():
            print(
                f"profile: py-spy cannot attach here ({probe.stderr.strip()[-200:]}); not profiling"
            )
            return []
    # A profile left by an earlier run must not be summarised as this run's.
    profile_path(engine).unlink(missing_ok=True)
    return [
        found,
        "record",
        "--rate",
        "200",
        "--subprocesses",
        "--format",
        "raw",
        "-o",
        str(profile_path(engine)),
        "--",
    ]


def profile_path(engine: str) -> Path:
    return OUT_DIR / f"profile-{engine}.txt"


# Frames that enclose every sample of the daemon; listing them would say nothing.
SCAFFOLDING = ("(pytrs/__main__.py)", "(pytrs/cli.py)", "(pytrs/daemon.py)")


def summarise_profile(path: Path, top: int = 25) -> None:
    """Print the hottest leaf functions (self time) and pytrs functions (inclusive)."""
    leaves: collections.Counter[str] = collections.Counter()
    leaf_lines: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = imports = 0
    for stack, count in read_raw_profile(path):
        # The profile covers the whole process life; module imports are start-up, not ingest,
        # and would otherwise crowd the top of a short run.
        if any("importlib._bootstrap" in frame for frame in stack):
            imports += count
            continue
        total += count
        leaves[function_name(stack[-1])] += count
        leaf_lines[stack[-1]] += count
        for name in {function_name(frame) for frame in stack if "pytrs/" in frame}:
            if not name.endswith(SCAFFOLDING):
                inclusive[name] += count
    print(f"\nprofile {path}")
    print(f"{total} samples at 200/s, plus {imports} in start-up imports (left out). A leaf is")
    print("the innermost Python frame: time in C (sqlite3, fsync, uvloop's loop) is charged to")
    print("its caller, and a thread blocked in C may escape py-spy's idle filter, so each leaf")
    print("shows its hottest line (a queue wait is not work).")
    print(f"  top {top} leaf functions (self samples; hottest line, its share):")
    for name, count in leaves.most_common(top):
        line, share = hottest_line(name, leaf_lines)
        print(f"  {count:8d} {100 * count / total:5.1f}%  {name}  [line {line}: {share:.0%}]")
    print("  top 15 pytrs functions (inclusive samples):")
    for name, count in inclusive.most_common(15):
        print(f"  {count:8d} {100 * count / total:5.1f}%  {name}")


def read_raw_profile(path: Path) -> Iterator[tuple[list[str], int]]:
    """(frames root-first, sample count) per line of a py-spy `--format raw` file."""
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        # --subprocesses puts a `process PID:"cmdline"` pseudo-frame at the root of each stack.
        frames = [frame for frame in stack.split(";") if not frame.startswith("process ")]
        if frames:
            yield frames, int(count)


FRAME_LINE = re.compile(r":(\d+)\)$")


def function_name(frame: str) -> str:
    # Frames read "func (path/file.py:123)"; dropping the line number merges a function's lines.
    return FRAME_LINE.sub(")", frame)


def hottest_line(name: str, lines: collections.Counter[str]) -> tuple[str, float]:
    mine = {frame: n for frame, n in lines.items() if function_name(frame) == name}
    frame = max(mine, key=mine.__getitem__)
    match = FRAME_LINE.search(frame)
    return (match.group(1) if match else "?"), mine[frame] / sum(mine.values())


# --- report --------------------------------------------------------------------------------

# --escalations: which runs each engine gets (escalating or not), in order.
ESCALATION_MODES = {"off": (False,), "on": (True,), "both": (False, True)}
# Issue 14: ingest with escalations on stays within 10 % of ingest without.
ESCALATION_FLOOR = 0.90


def escalation_ratios(
    results: list[Result], pick: Callable[[list[float]], float] = max
) -> dict[str, float]:
    """Per engine run both ways: `pick` (the best, or the median) of the e2e rates with
    escalations / the same of the rates without."""
    rates: dict[tuple[str, bool], list[float]] = collections.defaultdict(list)
    for r in results:
        if r.ok and not r.pace:
            rates[r.engine, r.escalations].append(r.e2e_rate)
    return {
        engine: pick(rates[engine, True]) / pick(rates[engine, False])
        for engine, escalations in list(rates)
        if escalations and (engine, False) in rates
    }


def print_escalation_ratios(results: list[Result]) -> None:
    medians = escalation_ratios(results, statistics.median)
    for engine, ratio in escalation_ratios(results).items():
        verdict = "within" if ratio >= ESCALATION_FLOOR else "NOT within"
        print(
            f"{engine}: e2e with escalations / without = {ratio:.3f} best of each, "
            f"{medians[engine]:.3f} median ({verdict} {1 - ESCALATION_FLOOR:.0%} at best)"
        )


# (heading, width, format, value); text columns are left-aligned, numbers right-aligned.
COLUMNS: tuple[tuple[str, int, str, Any], ...] = (
    ("engine", 14, "", lambda r: r.label),
    ("msgs", 6, "d", lambda r: r.messages),
    ("e2e msg/s", 9, ".0f", lambda r: r.e2e_rate),
    ("ceiling", 7, ".0f", lambda r: r.ceiling_rate),
    ("× ceiling", 9, ".3f", lambda r: r.ratio_to_ceiling),
    ("smtp msg/s", 10, ".0f", lambda r: r.smtp_rate),
    ("p50 ms", 7, ".1f", lambda r: r.latency_ms.get("p50", math.nan)),
    ("p99 ms", 7, ".1f", lambda r: r.latency_ms.get("p99", math.nan)),
    ("max ms", 7, ".1f", lambda r: r.latency_ms.get("max", math.nan)),
    ("peak RSS MiB", 12, ".1f", lambda r: r.peak_rss_mib),
    ("peak PSS MiB", 12, ".1f", lambda r: r.peak_pss_mib),
    ("procs", 5, "d", lambda r: r.peak_processes),
    ("e2e/parse", 9, ".3f", lambda r: r.ratio_to_parse),
    ("tickets", 7, "d", lambda r: r.tickets),
    ("escal.", 6, "d", lambda r: r.escalating),
    ("quar.", 5, "d", lambda r: r.quarantined),
    ("status", 6, "", lambda r: "OK" if r.ok else "FAIL"),
)


def _ms(figures: dict[str, float]) -> str:
    return " / ".join(f"{figures.get(k, math.nan):.1f}" for k in ("p50", "p99", "max"))


# Paced runs: the daemon's acceptance latency beside the no-op server's at the same pace.
PACED_COLUMNS: tuple[tuple[str, int, str, Any], ...] = (
    ("engine", 14, "", lambda r: r.engine + ("+esc" if r.escalations else "")),
    ("pace msg/s", 10, ".0f", lambda r: r.pace),
    ("msgs", 6, "d", lambda r: r.messages),
    ("smtp msg/s", 10, ".0f", lambda r: r.smtp_rate),
    ("pytrs p50/p99/max ms", 22, "", lambda r: _ms(r.latency_ms)),
    ("no-op p50/p99/max ms", 22, "", lambda r: _ms(r.ceiling_latency_ms)),
    ("e2e msg/s", 9, ".0f", lambda r: r.e2e_rate),
    ("peak RSS MiB", 12, ".1f", lambda r: r.peak_rss_mib),
    ("peak PSS MiB", 12, ".1f", lambda r: r.peak_pss_mib),
    ("procs", 5, "d", lambda r: r.peak_processes),
    ("status", 6, "", lambda r: "OK" if r.ok else "FAIL"),
)


def print_columns(columns: tuple[tuple[str, int, str, Any], ...], results: list[Result]) -> None:
    align = {"": "<"}
    print("  ".join(f"{name:{align.get(fmt, '>')}{width}}" for name, width, fmt, _ in columns))
    for result in results:
        cells = (
            f"{get(result):{align.get(fmt, '>')}{width}{fmt}}" for _, width, fmt, get in columns
        )
        print("  ".join(cells))
    print()


def print_table(
    results: list[Result], parse_rate: float, corpus_bytes: int, threads: int | None
) -> None:
    print(
        f"\nbare parse (email.message_from_bytes, compat32, 1 core, best of 3): "
        f"{parse_rate:,.0f} msg/s; corpus {corpus_bytes / 2**20:.1f} MiB"
        + (f", {threads} threads (tickets if every reply is threaded)" if threads else "")
    )
    loops = sorted({r.ceiling_loop for r in results if r.ceiling_loop})
    if loops:
        print(f"ceiling: a no-op aiosmtpd server ({', '.join(loops)}), same client, just before")
    print()
    closed = [r for r in results if not r.pace]
    if closed:
        print_columns(COLUMNS, closed)
    paced = [r for r in results if r.pace]
    if paced:
        print("paced open loop: latency from each mail's due time to its final DATA reply")
        print_columns(PACED_COLUMNS, paced)
    for result in results:
        if math.isnan(result.e2e_seconds):
            print(f"{result.label}: ERROR {result.error}")
            continue
        detail = f"{result.label}: e2e {result.e2e_seconds:.2f} s, last 250 after "
        detail += f"{result.smtp_seconds:.2f} s, {result.articles} articles, {result.stop}"
        print(detail + (f"; ERROR {result.error}" if result.error else ""))


def write_json(
    path: Path,
    results: list[Result],
    args: argparse.Namespace,
    parse_rate: float,
    corpus: list[bytes],
    threads: int | None,
    version: str,
) -> None:
    document: dict[str, Any] = {
        "benchmark": "ingest",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "corpus": {
            "messages": len(corpus),
            "bytes": sum(map(len, corpus)),
            "seed": args.seed,
            "source": str(args.corpus or args.gen),
            "threads": threads,
        },
        "pytrs": version,
        "connections": args.connections,
        "rounds": args.rounds,
        "ceiling": args.ceiling,
        "paced": args.paced,
        "paced_seconds": args.paced_seconds,
        "profiled": args.profile,
        "bare_parse_rate": parse_rate,
        "results": [asdict(result) | {"ok": result.ok} for result in results],
        "escalation_ratios": escalation_ratios(results),
        "escalation_ratios_median": escalation_ratios(results, statistics.median),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def source_version() -> str:
    """The commit measured, with "+dirty" when the tree differs from it (figures age fast)."""
    git = ["git", "-C", str(HERE.parent)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "pytrs"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


# --- command line --------------------------------------------------------------------------


def rates(text: str) -> list[float]:
    """--paced: comma-separated positive mails/s."""
    try:
        values = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"rates must be positive numbers: {text!r}")
    return values


def paced_corpus(corpus: list[bytes], rate: float, seconds: float) -> list[bytes]:
    """The first min(all, rate × seconds) mails, at least one connection's worth."""
    return corpus[: max(1, min(len(corpus), round(rate * seconds)))]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, default=None, help="messages (default 5000; with --corpus: all files)"
    )
    parser.add_argument("--seed", type=int, default=1, help="corpus generator seed")
    parser.add_argument("--corpus", type=Path, help="use this directory of .eml files instead")
    parser.add_argument("--gen", type=Path, default=DEFAULT_GEN, help="corpus generator script")
    parser.add_argument("--connections", type=int, default=8, help="concurrent SMTP clients")
    parser.add_argument(
        "--engines", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql"
    )
    parser.add_argument(
        "--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server (SQLAlchemy URL)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--rules",
        type=int,
        default=0,
        help="load this many postmaster filter rules first",
    )
    parser.add_argument(
        "--auto-reply",
        action="store_true",
        help="answer every new ticket with a templated auto reply (system article + outbox row)",
    )
    parser.add_argument(
        "--escalations",
        choices=tuple(ESCALATION_MODES),
        default="off",
        help="the Support queue escalating on office hours: off, on, or both back to back "
        "(prints the ratio of the end-to-end rates)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run each set-up this many times, alternating (the ratio takes the best of each)",
    )
    parser.add_argument(
        "--no-ceiling",
        dest="ceiling",
        action="store_false",
        help="do not measure the transport ceiling (the no-op SMTP server) before each run",
    )
    parser.add_argument(
        "--paced",
        type=rates,
        default=[],
        metavar="RATES",
        help="also run paced open loop at these mails/s, e.g. 100,500,1000 (with "
        "--connections 50): latency from each mail's due time to its final DATA reply",
    )
    parser.add_argument(
        "--paced-seconds",
        type=float,
        default=10.0,
        help="a paced run sends min(messages, rate × this) mails (default 10)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the daemon under py-spy; bench/out/profile-<engine>.txt",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds to wait for every message to become an article",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="PYTRS_X=VALUE",
        help="environment for the daemon, e.g. PYTRS_DAEMON_EVENT_LOOP=uvloop",
    )
    args = parser.parse_args(argv)
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(args.engines) - set(ENGINES)
    if unknown or not args.engines:
        parser.error(f"--engines takes {', '.join(ENGINES)}; got {args.engines}")
    if args.connections < 1:
        parser.error("--connections must be at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.paced_seconds <= 0:
        parser.error("--paced-seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    # Taken at the start: the tree may change under a long run, and the figures belong to this.
    version = source_version()
    print(f"pytrs {version}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="pytrs-bench-corpus-") as tmp:
        corpus, threads = load_corpus(args, Path(tmp))
    # Measured before any daemon runs, so the baseline has the machine to itself.
    parse_rate = bare_parse_rate(corpus)
    results = []
    for engine in args.engines:
        # Rounds alternate the set-ups, so that a busy spell of the machine's other work
        # does not land on one of them only.
        for escalations in ESCALATION_MODES[args.escalations] * args.rounds:
            label = Result(engine, 0, escalations).label
            spy = py_spy_command(label) if args.profile else []
            print(f"{label}: {len(corpus)} messages, {args.connections} connections …", flush=True)
            results.append(run_engine(engine, corpus, args, parse_rate, spy, escalations))
            if spy and profile_path(label).exists():
                summarise_profile(profile_path(label))
                print_stages(profile_path(label), results[-1].accepted)
        # Each pace on a fresh database and daemon, so that no backlog of one pace is charged
        # to the next (the escalation set-up of --escalations on/both, the plain one otherwise).
        escalations = ESCALATION_MODES[args.escalations][-1]
        for pace in args.paced:
            mails = paced_corpus(corpus, pace, args.paced_seconds)
            label = Result(engine, 0, escalations, pace).label
            spy = py_spy_command(label) if args.profile else []
            print(
                f"{label}: {len(mails)} messages paced at {pace:g}/s, "
                f"{args.connections} connections …",
                flush=True,
            )
            results.append(run_engine(engine, mails, args, parse_rate, spy, escalations, pace=pace))
            if spy and profile_path(label).exists():
                summarise_profile(profile_path(label))
                print_stages(profile_path(label), results[-1].accepted)
    print_table(results, parse_rate, sum(map(len, corpus)), threads)
    print_escalation_ratios(results)
    if args.json:
        write_json(args.json, results, args, parse_rate, corpus, threads, version)
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
