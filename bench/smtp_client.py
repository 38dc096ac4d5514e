"""The ingest benchmark's SMTP client: `smtplib` connections in threads of the bench process,
driven closed loop (each connection sends its next mail as soon as the last one is answered) or
paced open loop (each mail has a due time; issue 16).

Closed loop measures throughput; its latencies only say connections / throughput. Paced, a free
connection takes the next due mail and waits for its due time if it is early; the latency runs
from the due time to the final DATA reply, so a stall of the server is charged for the queue it
causes behind it, as a real sender would see it. The same client drives the daemon and the
no-op server (`noop_smtp.py`), so its own overhead is in both.

Imported by `bench/ingest.py` (run as `python bench/ingest.py`, which puts this directory on
the path); not part of pytrs.
"""

from __future__ import annotations

import concurrent.futures
import math
import smtplib
import threading
import time
from dataclasses import dataclass, field

# The corpus is addressed to this system address; the envelope sender is irrelevant to pytrs's
# routing (it reads From:), so one fixed sender keeps the client side trivial.
RECIPIENT = "support@helpdesk.example.com"
ENVELOPE_FROM = "bench@client.example.net"
CONNECT_TIMEOUT = 60.0
# Paced: the first mail is due this long after the last connection is open, so that no thread
# starts late only because it was the last to be scheduled after the barrier.
PACED_LEAD_SECONDS = 0.05


@dataclass
class Share:
    """What one client connection did; latencies in seconds."""

    latencies: list[float] = field(default_factory=list)
    first_start: float = math.inf
    last_end: float = 0.0
    errors: list[str] = field(default_factory=list)


def _send_one(client: smtplib.SMTP, raw: bytes, share: Share) -> bool:
    """Send one mail; False when the connection is gone (the share stops there)."""
    try:
        client.sendmail(ENVELOPE_FROM, [RECIPIENT], raw)
    except smtplib.SMTPServerDisconnected as exc:
        share.errors.append(f"disconnected: {exc}")
        return False
    except smtplib.SMTPException as exc:
        share.errors.append(repr(exc))
    return True


def send_share(
    address: tuple[str, int], messages: list[bytes], barrier: threading.Barrier
) -> Share:
    share = Share()
    with smtplib.SMTP(*address, local_hostname="client.example.net", timeout=120) as client:
        client.ehlo()
        # Every connection is open before the clock starts: connection set-up is not ingest.
        barrier.wait(timeout=CONNECT_TIMEOUT)
        for raw in messages:
            start = time.perf_counter()
            failures = len(share.errors)
            if not _send_one(client, raw, share):
                break
            if len(share.errors) > failures:
                continue
            end = time.perf_counter()
            share.first_start = min(share.first_start, start)
            share.latencies.append(end - start)
            share.last_end = end
    return share


def send_corpus(address: tuple[str, int], corpus: list[bytes], connections: int) -> list[Share]:
    """Closed loop: the corpus round-robin over `connections` concurrent connections."""
    barrier = threading.Barrier(connections)
    with concurrent.futures.ThreadPoolExecutor(connections, "smtp-client") as pool:
        futures = [
            pool.submit(send_share, address, corpus[k::connections], barrier)
            for k in range(connections)
        ]
        return [future.result() for future in futures]


class Schedule:
    """Mail i is due at start + i / rate; connections take the mails in order."""

    def __init__(self, count: int, rate: float) -> None:
        self.count = count
        self.rate = rate
        self.start = math.inf  # set by the barrier once every connection is open
        self._next = 0
        self._lock = threading.Lock()

    def begin(self) -> None:
        self.start = time.perf_counter() + PACED_LEAD_SECONDS

    def take(self) -> tuple[int, float] | None:
        """The next mail's index and due time, or None when all are taken."""
        with self._lock:
            index = self._next
            if index >= self.count:
                return None
            self._next += 1
        return index, self.start + index / self.rate


def paced_share(
    address: tuple[str, int],
    corpus: list[bytes],
    schedule: Schedule,
    barrier: threading.Barrier,
) -> Share:
    share = Share()
    with smtplib.SMTP(*address, local_hostname="client.example.net", timeout=120) as client:
        client.ehlo()
        barrier.wait(timeout=CONNECT_TIMEOUT)
        share.first_start = schedule.start
        while (taken := schedule.take()) is not None:
            index, due = taken
            early = due - time.perf_counter()
            if early > 0:
                time.sleep(early)
            failures = len(share.errors)
            if not _send_one(client, corpus[index], share):
                break
            if len(share.errors) > failures:
                continue
            share.last_end = time.perf_counter()
            share.latencies.append(share.last_end - due)
    return share


def send_paced(
    address: tuple[str, int], corpus: list[bytes], connections: int, rate: float
) -> list[Share]:
    """Open loop: `corpus` at `rate` mails/s over `connections` connections (see the module
    docstring); each share's `first_start` is the first mail's due time."""
    schedule = Schedule(len(corpus), rate)
    barrier = threading.Barrier(connections, action=schedule.begin)
    with concurrent.futures.ThreadPoolExecutor(connections, "smtp-paced") as pool:
        futures = [
            pool.submit(paced_share, address, corpus, schedule, barrier) for _ in range(connections)
        ]
        return [future.result() for future in futures]
