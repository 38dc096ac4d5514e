"""Talking to systemd (`Type=notify`): state notifications and the watchdog's interval.

Place in the flow: the daemon says READY=1 once its services run and STOPPING=1 when the drain
begins; `runtime.watchdog` sends WATCHDOG=1 and STATUS= lines. Outside systemd (no
`NOTIFY_SOCKET`) every call is a no-op, so the same code runs in a terminal and in tests.
See sd_notify(3) and sd_watchdog_enabled(3).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping


def sd_notify(state: str) -> None:
    """Tell systemd about our state (one or more `KEY=value` lines); a no-op outside systemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):  # an abstract socket
        path = "\0" + path[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(state.encode(), path)


def watchdog_seconds(environ: Mapping[str, str] | None = None) -> float | None:
    """The watchdog interval systemd asks of this process (`WatchdogSec=`), None when none.

    As sd_watchdog_enabled(3): `WATCHDOG_USEC` set to a positive number, and `WATCHDOG_PID`
    unset or our own pid (a worker child inherits its parent's environment and must not ping
    in its name). A malformed value counts as no watchdog.
    """
    env = os.environ if environ is None else environ
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None
