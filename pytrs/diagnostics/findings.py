"""The answer of a diagnostic check: one `Finding` per line `pytrs doctor` prints.

Place in the flow: every check of `pytrs.diagnostics` returns a list of these; the runner adds
its own (a check that ran out of time or failed unexpectedly, one skipped for want of a
configuration), and the command prints them as text or JSON.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

OK = "OK"
WARN = "WARN"  # works, but is probably not what the admin wants (or will break later)
FAIL = "FAIL"  # pytrs will not work this way; `pytrs doctor` exits 1
SKIP = "SKIP"  # not checked: something it needs failed first (said in `found`)


@dataclass(frozen=True, slots=True)
class Finding:
    status: str
    check: str  # configuration, database, permissions, dkim, relay, mailbox, listener
    found: str  # what was found, on one line
    advice: str = ""  # what to do about it; empty for OK

    def line(self) -> str:
        """`FAIL  database: at 0013, head is 0015 — run: pytrs db upgrade`."""
        text = f"{self.status:<6}{self.check}: {_one_line(self.found)}"
        return f"{text} — {_one_line(self.advice)}" if self.advice else text

    def as_dict(self) -> dict[str, str]:
        return {
            "status": self.status,
            "check": self.check,
            "found": self.found,
            "advice": self.advice,
        }


def ok(check: str, found: str) -> Finding:
    return Finding(OK, check, found)


def warn(check: str, found: str, advice: str) -> Finding:
    return Finding(WARN, check, found, advice)


def fail(check: str, found: str, advice: str) -> Finding:
    return Finding(FAIL, check, found, advice)


def describe(exc: BaseException) -> str:
    """An exception in a few words on one line: its message, else its class name."""
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.strerror:
        text = " ".join(str(exc.strerror).split())  # without "[Errno 111]" in front
        if text.startswith("Connect call failed") and exc.errno:
            # asyncio's words ("Connect call failed ('127.0.0.1', 25)") hide the reason.
            text = os.strerror(exc.errno)
    return text[:300] or type(exc).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())
