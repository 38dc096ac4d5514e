"""Working-time arithmetic cost: what the escalation index pays per ticket change.

Office hours (Mon-Fri 08-12, 13-17, Europe/Berlin, 10 holidays): a 4-hour budget from random
instants of a year (the index adds three budgets per change), a one-year budget, and
working_between over a month. Warm: the per-date spans are cached as they are in a daemon;
cold: a new calendar each time (the first change after a start or a calendar edit).

    python bench/calendars.py [--n 20000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytrs.calendars import WorkingCalendar, always, calendar_from_definition  # noqa: E402

OFFICE = ["08:00-12:00", "13:00-17:00"]
DEFINITION = {
    "timezone": "Europe/Berlin",
    "hours": {day: OFFICE for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": [
        "01-01", "01-06", "05-01", "10-03", "11-01", "12-24", "12-25", "12-26", "12-31",
        "2027-05-06",
    ],
}  # fmt: skip
HOUR = 3600
YEAR_START = 1_798_761_600  # 2027-01-01 UTC


def office() -> WorkingCalendar:
    return calendar_from_definition("office", DEFINITION)


def per_call(label: str, n: int, call: Callable[[int], object]) -> None:
    starts = [YEAR_START + random.randrange(365 * 86400) for _ in range(n)]
    began = time.perf_counter()
    for start in starts:
        call(start)
    took = (time.perf_counter() - began) / n
    print(f"{label:<58} {took * 1e6:9.2f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    n = parser.parse_args().n
    random.seed(14)
    warm = office()
    warm.working_between(YEAR_START - 86400 * 7, YEAR_START + 2 * 365 * 86400)  # fill the cache
    per_call("add_working 4 h, warm", n, lambda s: warm.add_working(s, 4 * HOUR))
    per_call(
        "three budgets per change (4 h, 8 h, 40 h), warm",
        n,
        lambda s: [warm.add_working(s, b * HOUR) for b in (4, 8, 40)],
    )
    per_call(
        "add_working 1 year (2080 h), warm", n // 10, lambda s: warm.add_working(s, 2080 * HOUR)
    )
    per_call(
        "working_between over 30 days, warm", n, lambda s: warm.working_between(s, s + 30 * 86400)
    )
    per_call(
        "add_working 4 h, cold (a new calendar)",
        n // 10,
        lambda s: office().add_working(s, 4 * HOUR),
    )
    per_call(
        "add_working 1 year, cold (a new calendar)",
        50,
        lambda s: office().add_working(s, 2080 * HOUR),
    )
    per_call("building the calendar from its definition", n // 10, lambda s: office())
    round_the_clock = always("Europe/Berlin")
    per_call("always(): add_working 4 h", n, lambda s: round_the_clock.add_working(s, 4 * HOUR))


if __name__ == "__main__":
    main()
