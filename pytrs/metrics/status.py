"""The figures of systemd's STATUS= line: what waits in the inbox and outbox, how the mail
accounts fare. `systemctl status pytrs` shows the line.

Place in the flow: the daemon's watchdog (`runtime.watchdog`) calls `StatusReader.read` every
few seconds and when the daemon's state changes; one short read through `schema.ops_repo`
(index-only counts). A database that does not answer is part of the status, never an error:
the line then says so, and the watchdog keeps pinging (the services report their own trouble).
"""

from __future__ import annotations

import asyncio
from collections import Counter

from pytrs.config import Config
from pytrs.schema import ops_repo
from pytrs.schema.database import Database, utcnow
from pytrs.schema.inbox_repo import PENDING, QUARANTINED, process_identity
from pytrs.schema.outbox_repo import FAILED, SENDING
from pytrs.schema.outbox_repo import PENDING as OUTBOX_PENDING

# A status read that takes longer than this is given up: the database is in trouble.
READ_SECONDS = 5.0


class StatusReader:
    """Reads and words the figures of one daemon's STATUS= line."""

    def __init__(self, config: Config, db: Database, *, fetching: bool = True) -> None:
        self.db = db
        # The accounts this daemon may fetch (role "gateway"): theirs is the health to show.
        self.accounts = [a.name for a in config.mail_accounts] if fetching else []
        self.owner = process_identity()

    async def read(self, stopping: bool = False) -> str:
        """E.g. "inbox 0 waiting, outbox 1 to send, 3 deferred, 2 accounts: 2 fetching", or
        while stopping "stopping: draining 5 inbox rows"."""
        try:
            async with asyncio.timeout(READ_SECONDS), self.db.connect() as conn:
                found = await ops_repo.status_figures(conn, self.accounts, utcnow())
        except Exception as exc:  # an outage is what the line is for; never a crash
            why = str(exc).strip().partition("\n")[0] or type(exc).__name__
            return f"{'stopping: ' if stopping else ''}database not answering: {why[:160]}"
        if stopping:
            return f"stopping: draining {found.inbox[PENDING]} inbox rows"
        return ", ".join([*self._queues(found), *self._accounts(found)])

    @staticmethod
    def _queues(found: ops_repo.StatusFigures) -> list[str]:
        parts = [f"inbox {found.inbox[PENDING]} waiting"]
        if found.inbox[QUARANTINED]:
            parts.append(f"{found.inbox[QUARANTINED]} quarantined")
        due = found.outbox[OUTBOX_PENDING] - found.outbox_deferred
        parts += [f"outbox {due} to send", f"{found.outbox_deferred} deferred"]
        for state in (SENDING, FAILED):
            if found.outbox[state]:
                parts.append(f"{found.outbox[state]} {state}")
        return parts

    def _accounts(self, found: ops_repo.StatusFigures) -> list[str]:
        if not self.accounts:
            return []
        health: Counter[str] = Counter()
        for name in self.accounts:
            holder, failures = found.accounts.get(name, (None, 0))
            if failures:
                health["failing"] += 1
            elif holder == self.owner:
                health["fetching"] += 1
            elif holder:
                health["fetched by another daemon"] += 1
            else:
                health["waiting"] += 1
        words = [f"{count} {what}" for what, count in health.most_common()]
        noun = "account" if len(self.accounts) == 1 else "accounts"
        return [f"{len(self.accounts)} {noun}: {words[0]}", *words[1:]]
