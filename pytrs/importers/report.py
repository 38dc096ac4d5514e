"""What an import did: counts per kind, every skip with its reason, and the progress display.

Place in the flow: `importers.znuny` counts into a `Summary` as it copies (a dry run counts
the same way, writing nothing); `pytrs import znuny` prints it at the end. `Progress` draws a
bar on a terminal and plain lines otherwise (a log, a pipe), always on stderr.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO


@dataclass(frozen=True, slots=True)
class Skip:
    """One source row not copied, and why (said so an operator can act on it)."""

    kind: str
    what: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} {self.what}: {self.reason}"


@dataclass
class Summary:
    """Counts per kind: copied now, already there (an earlier run or pytrs's own row), skipped."""

    dry_run: bool = False
    copied: Counter[str] = field(default_factory=Counter)
    present: Counter[str] = field(default_factory=Counter)
    skips: list[Skip] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def _seen(self, kind: str) -> None:
        if kind not in self.kinds:
            self.kinds.append(kind)

    def add_copied(self, kind: str, n: int = 1) -> None:
        self._seen(kind)
        self.copied[kind] += n

    def add_present(self, kind: str, n: int = 1) -> None:
        self._seen(kind)
        self.present[kind] += n

    def skip(self, kind: str, what: str, reason: str) -> None:
        self._seen(kind)
        self.skips.append(Skip(kind, what, reason))

    def merge_skips(self, other: Summary) -> None:
        for skip in other.skips:
            self.skip(skip.kind, skip.what, skip.reason)

    def skipped(self, kind: str) -> int:
        return sum(1 for s in self.skips if s.kind == kind)

    def lines(self) -> list[str]:
        verb = "would copy" if self.dry_run else "copied"
        width = max([len(k) for k in self.kinds] or [4])
        out = [f"{'KIND':<{width}}  {verb.upper():>10}  {'ALREADY THERE':>13}  {'SKIPPED':>7}"]
        for kind in self.kinds:
            out.append(
                f"{kind:<{width}}  {self.copied[kind]:>10}  {self.present[kind]:>13}  "
                f"{self.skipped(kind):>7}"
            )
        if self.skips:
            out.append(f"skipped ({len(self.skips)}):")
            out += [f"  {skip}" for skip in self.skips]
        if self.dry_run:
            out.append("dry run: nothing was written")
        return out

    def as_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "kinds": {
                kind: {
                    "copied": self.copied[kind],
                    "already_there": self.present[kind],
                    "skipped": self.skipped(kind),
                }
                for kind in self.kinds
            },
            "skips": [{"kind": s.kind, "what": s.what, "reason": s.reason} for s in self.skips],
        }


class Progress:
    """Tickets done out of the total: a bar redrawn in place on a terminal, else a plain line
    every `every` seconds (and at the end), so that a log shows the copy moving."""

    def __init__(self, stream: TextIO | None, total: int, every: float = 5.0) -> None:
        self.stream, self.total, self.every = stream, total, every
        self.done = 0
        self._tty = bool(stream and stream.isatty())
        self._last = float("-inf")  # the first step is shown at once

    def step(self, n: int, label: str = "tickets") -> None:
        self.done += n
        if self.stream is None:
            return
        now = time.monotonic()
        if self._tty:
            share = self.done / self.total if self.total else 1.0
            bar = "#" * int(share * 30)
            self.stream.write(f"\r{label} [{bar:<30}] {self.done}/{self.total}")
            self.stream.flush()
        elif now - self._last >= self.every or self.done >= self.total:
            self.stream.write(f"{label}: {self.done}/{self.total}\n")
            self.stream.flush()
            self._last = now

    def finish(self) -> None:
        if self.stream is not None and self._tty:
            self.stream.write("\n")
            self.stream.flush()
