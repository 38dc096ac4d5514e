"""Mail for the chaos test and the clients that deliver it as an MTA would.

A `Letter` is one mail with a Message-ID of its own: a new request from a customer of its own
(so that each gets its auto-reply: loop protection counts per address), or a customer's
follow-up to one of their earlier letters. An `MtaClient` (a thread) keeps an SMTP session to
one daemon and sends its letters one after the other; on a refused connection, a dropped
session, a timeout or a 4xx it sends the same bytes again to another daemon, as an MTA retries
a deferred mail, until a 250. A 5xx is final, and the test fails on it.
"""

from __future__ import annotations

import random
import smtplib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..helpers import make_mail

SUPPORT = "support@example.com"
# How long one letter may keep failing before the client gives up (the test then fails).
GIVE_UP_SECONDS = 180.0
# A client moves to another daemon now and then even when nothing fails, as MTAs spread
# their sessions.
MAILS_PER_SESSION = 25


@dataclass(frozen=True)
class Letter:
    message_id: str
    sender: str
    subject: str
    raw: bytes
    parent: str = ""  # the Message-ID of the letter this one follows up


def new_letter(serial: str) -> Letter:
    sender = f"customer-{serial}@customer.example"
    message_id = f"<chaos-{serial}@customer.example>"
    subject = f"chaos request {serial}"
    raw = make_mail(subject=subject, sender=sender, message_id=message_id,
                    body=f"Request {serial}: nothing works.\n")  # fmt: skip
    return Letter(message_id, sender, subject, raw)


def follow_up(parent: Letter, serial: str) -> Letter:
    message_id = f"<chaos-{serial}@customer.example>"
    raw = make_mail(
        subject=f"Re: {parent.subject}", sender=parent.sender, message_id=message_id,
        in_reply_to=parent.message_id, references=parent.message_id,
        body=f"Follow-up {serial}: still broken.\n",
    )  # fmt: skip
    return Letter(message_id, parent.sender, f"Re: {parent.subject}", raw, parent.message_id)


def letters_for(client: int, count: int, follow_up_every: int) -> list[Letter]:
    """Client `client`'s letters: every `follow_up_every`-th one follows up a letter the same
    client sent a few before (so the parent was acknowledged first)."""
    out: list[Letter] = []
    for i in range(count):
        serial = f"{client:02d}-{i:05d}"
        roots = [letter for letter in out[-6:-2] if not letter.parent]
        if follow_up_every and i % follow_up_every == follow_up_every - 1 and roots:
            out.append(follow_up(roots[0], serial))
        else:
            out.append(new_letter(serial))
    return out


@dataclass
class Ledger:
    """What the clients got acknowledged, and what went wrong, shared by their threads."""

    acked: list[Letter] = field(default_factory=list)
    retries: int = 0
    refused: list[str] = field(default_factory=list)  # 5xx answers: final, a failure
    lock: threading.Lock = field(default_factory=threading.Lock)
    abandon: threading.Event = field(default_factory=threading.Event)  # the test gave up

    def ack(self, letter: Letter) -> None:
        with self.lock:
            self.acked.append(letter)

    def retried(self) -> None:
        with self.lock:
            self.retries += 1


class Deferred(Exception):
    """The daemon could not take the mail now (4xx, connection refused or lost)."""


class MtaClient:
    """Delivers `letters` to the daemons on `ports` (one thread)."""

    def __init__(
        self,
        letters: Sequence[Letter],
        *,
        ports: Sequence[int],
        ledger: Ledger,
        rng: random.Random,
        per_second: float,
    ) -> None:
        self.letters = letters
        # Mail arrives over time, as it does at an MTA: a client that fell behind (retries)
        # catches up without pausing.
        self.interval = 1 / per_second
        self.ports = list(ports)
        self.ledger = ledger
        self.rng = rng
        self._session: smtplib.SMTP | None = None
        self._port = 0
        self._sent_in_session = 0

    def run(self) -> None:
        began = time.monotonic()
        try:
            for i, letter in enumerate(self.letters):
                if self.ledger.abandon.is_set():
                    return
                ahead = began + i * self.interval - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                self._deliver(letter)
        finally:
            self._close()

    def _deliver(self, letter: Letter) -> None:
        give_up = time.monotonic() + GIVE_UP_SECONDS
        while True:
            try:
                self._send(letter)
                self.ledger.ack(letter)
                return
            except Deferred:
                self.ledger.retried()
                self._close()
                self._port = self._other_port()
                if self.ledger.abandon.is_set():
                    return
                if time.monotonic() > give_up:
                    raise
                time.sleep(self.rng.uniform(0.05, 0.3))
            except smtplib.SMTPResponseException as exc:  # 5xx: final
                with self.ledger.lock:
                    self.ledger.refused.append(f"{letter.message_id}: {exc.smtp_code} {exc}")
                self._close()
                return

    def _send(self, letter: Letter) -> None:
        try:
            session = self._connected()
            refused = session.sendmail(letter.sender, [SUPPORT], letter.raw)
            if refused:  # one recipient only: sendmail raises when all are refused
                raise AssertionError(f"{letter.message_id} refused: {refused}")
            self._sent_in_session += 1
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(400 <= code < 500 for code in codes):
                raise Deferred(str(exc)) from exc
            raise smtplib.SMTPResponseException(codes[0], str(exc)) from exc
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise Deferred(str(exc)) from exc
            raise
        except (OSError, smtplib.SMTPServerDisconnected) as exc:  # refused, reset, timed out
            raise Deferred(str(exc)) from exc

    def _connected(self) -> smtplib.SMTP:
        if self._session is not None and self._sent_in_session >= MAILS_PER_SESSION:
            self._close()
            self._port = self._other_port()
        if self._session is None:
            self._port = self._port or self.rng.choice(self.ports)
            self._session = smtplib.SMTP("127.0.0.1", self._port, timeout=30)
            self._sent_in_session = 0
        return self._session

    def _other_port(self) -> int:
        return self.rng.choice([p for p in self.ports if p != self._port] or self.ports)

    def _close(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            session.quit()
        except (OSError, smtplib.SMTPException):
            session.close()


def feed(clients: Sequence[MtaClient], on_done: Callable[[], None]) -> list[threading.Thread]:
    """Start each client in a thread of its own; `on_done` is called when all are done."""
    threads = [threading.Thread(target=c.run, name=f"mta-{i}") for i, c in enumerate(clients)]

    def watch() -> None:
        for thread in threads:
            thread.join()
        on_done()

    for thread in threads:
        thread.start()
    watcher = threading.Thread(target=watch, name="mta-watch")
    watcher.start()
    return [*threads, watcher]


def drop_into_mailbox(
    append: Callable[[bytes], object], letters: Sequence[Letter], feeding: threading.Event,
    *, per_second: float,
) -> None:  # fmt: skip
    """Put `letters` into the IMAP mailbox at `per_second` while the SMTP feed runs, and the
    rest at once when it is over (a thread; `append` is Dovecot's APPEND)."""
    for letter in letters:
        append(letter.raw)
        if feeding.is_set():
            time.sleep(1 / per_second)
