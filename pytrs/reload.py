"""SIGHUP: the configuration read again and applied all at once, or not at all.

Place in the flow: top floor, beside the daemon. The daemon's SIGHUP handler (and
`Daemon.reload()`, which tests call) asks `Reloads` for a reload; `Reloads` runs one at a time
and folds the requests that arrive during one into a single further run (those that arrive
before it read the file are served by it), so a burst of signals costs at most two reloads and
never two at once. The daemon itself reads, checks, builds and
swaps (`Daemon._reload_once`); this module holds what needs no service: the keys that only a
restart applies (`restart_changes`), and the counters.

Why some keys need a restart: the database connection (every service holds it), the event
loop, the number of worker processes and postmaster workers, the outbox lanes, and the sockets
the daemon listens on. Their change is logged as a warning and the running value kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pytrs.config import Config
from pytrs.metrics.registry import CONFIG_LAST_RELOAD, CONFIG_RELOADS

log = logging.getLogger(__name__)

# Dotted keys whose new value is not applied by a reload (see the module docstring).
RESTART_KEYS = (
    "database.url",
    "database.schema",
    "database.pool_size",
    "database.echo",
    "daemon.event_loop",
    "postmaster.processes",
    "postmaster.workers",
    "outbound.connections",
    "smtp.listen",
    "smtp.hostname",
    "smtp.lmtp_listen",
    "smtp.max_concurrent_big_messages",
    "smtp.commit_batch_max",
    "smtp.commit_delay_ms",
    "web.listen",
    "web.metrics_listen",
    "web.metrics_allow",
    "web.trusted_proxies",
)


def restart_changes(old: Config, new: Config) -> list[str]:
    """The keys of `RESTART_KEYS` whose value differs between `old` and `new`."""
    return [key for key in RESTART_KEYS if _value(old, key) != _value(new, key)]


def _value(config: Config, dotted: str) -> Any:
    section, _, key = dotted.partition(".")
    return getattr(getattr(config, section), key)


def count_reload(ok: bool) -> None:
    """Count one reload's outcome; a success also moves the last-success timestamp."""
    CONFIG_RELOADS.labels("ok" if ok else "refused").inc()
    if ok:
        mark_applied()


def mark_applied() -> None:
    """The running configuration was applied now (at the start, or by a reload)."""
    CONFIG_LAST_RELOAD.set(time.time())


class Reloads:
    """Runs `reload_once` on request, one at a time; requests during a run coalesce into one
    more run after it."""

    def __init__(self, reload_once: Callable[[], Awaitable[bool]]) -> None:
        self._reload_once = reload_once
        self._task: asyncio.Task[bool] | None = None
        self._again = False

    @property
    def running(self) -> asyncio.Task[bool] | None:
        """The task of the reload under way, if any."""
        return self._task if self._task is not None and not self._task.done() else None

    def request(self) -> asyncio.Task[bool]:
        """Start a reload, or queue one after the reload under way (never more than one)."""
        task = self.running
        if task is not None:
            if not self._again:
                log.info("reload requested while one is under way: one more follows it")
            self._again = True
            return task
        self._task = asyncio.create_task(self._runs(), name="config-reload")
        return self._task

    async def reload(self) -> bool:
        """Request a reload and wait for it (and for a queued one); True if the last applied."""
        return await asyncio.shield(self.request())

    async def _runs(self) -> bool:
        while True:
            self._again = False
            ok = await self._reload_once()
            if not self._again:
                return ok
