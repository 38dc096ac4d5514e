"""Running the diagnostic checks: concurrently, each under a deadline, never a traceback.

Place in the flow: between `pytrs.commands.doctor` (which prints) and the check modules. The
configuration is checked first, alone, since every other check needs it; the others then run
side by side, so that a dead host costs one timeout rather than one per check. Their findings
come back in the fixed order of `CHECKS`, each check's as soon as it and those before it are
done. A check that overruns its deadline, or fails in a way it did not foresee, becomes a FAIL
line of its own; the others are not affected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from pytrs.config import Config
from pytrs.diagnostics.configuration import check_configuration
from pytrs.diagnostics.database import check_database
from pytrs.diagnostics.dkim_dns import check_dkim_dns
from pytrs.diagnostics.findings import SKIP, Finding, fail
from pytrs.diagnostics.listeners import check_listeners
from pytrs.diagnostics.mailboxes import check_mailboxes
from pytrs.diagnostics.permissions import check_permissions
from pytrs.diagnostics.relay import check_relay

log = logging.getLogger(__name__)

Check = Callable[[Config, float], Awaitable[list[Finding]]]


async def _permissions(config: Config, _seconds: float) -> list[Finding]:
    return await asyncio.to_thread(check_permissions, config)


# (name, check) in the order they are printed, after the configuration's line(s).
CHECKS: tuple[tuple[str, Check], ...] = (
    ("database", check_database),
    ("permissions", _permissions),
    ("dkim", check_dkim_dns),
    ("relay", check_relay),
    ("mailbox", check_mailboxes),
    ("listener", check_listeners),
)
# Checks that start only when another has ended: the database check opens the SQLite file,
# which has its -wal and -shm files only while it is open, and the permissions check looks at
# the files at rest.
AFTER = {"permissions": "database"}
# Beyond its own deadline, what a check may take to wind up (close connections, QUIT).
GRACE_SECONDS = 5.0


async def run_checks(
    config_path: str | None, *, defaults: bool, seconds: float, debug: bool = False
) -> AsyncIterator[Finding]:
    """Every finding, in order; `seconds` bounds each network conversation. With `debug`, the
    traceback of a check that failed unexpectedly is logged."""
    try:
        config, findings = await asyncio.to_thread(
            check_configuration, config_path, defaults=defaults
        )
    except Exception as exc:  # not a ConfigError: those are findings already
        config, findings = None, _unexpected("configuration", exc, debug)
    for finding in findings:
        yield finding
    if config is None:
        for name, _check in CHECKS:
            yield Finding(SKIP, name, "not checked: the configuration does not load")
        return
    started: dict[str, asyncio.Task[list[Finding]]] = {}
    for name, check in CHECKS:
        first = started.get(AFTER.get(name, ""))
        started[name] = asyncio.create_task(
            _after(first, name, check, config, seconds, debug), name=f"doctor-{name}"
        )
    tasks = list(started.values())
    try:
        for task in tasks:
            for finding in await task:
                yield finding
    finally:
        for task in tasks:
            task.cancel()


async def _after(
    first: asyncio.Task[list[Finding]] | None,
    name: str,
    check: Check,
    config: Config,
    seconds: float,
    debug: bool,
) -> list[Finding]:
    if first is not None:
        await asyncio.wait({first})
    return await _guarded(name, check, config, seconds, debug)


async def _guarded(
    name: str,
    check: Check,
    config: Config,
    seconds: float,
    debug: bool,
    grace: float = GRACE_SECONDS,
) -> list[Finding]:
    try:
        async with asyncio.timeout(seconds + grace):
            return await check(config, seconds)
    except TimeoutError:
        return [
            fail(
                name,
                f"no answer within {seconds + grace:g} s",
                "run again with a longer --timeout, or check the hosts it talks to",
            )
        ]
    except Exception as exc:
        # A check's own bug, or a failure it did not foresee: its line, not a traceback.
        return _unexpected(name, exc, debug)


def _unexpected(name: str, exc: Exception, debug: bool) -> list[Finding]:
    if debug:
        log.error("doctor: the %s check failed", name, exc_info=exc)
    return [
        fail(
            name,
            f"unexpected error: {type(exc).__name__}: {exc}",
            "run again with --debug for the traceback, and report it",
        )
    ]
