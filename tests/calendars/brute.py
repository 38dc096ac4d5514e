"""A brute-force reference for the working-time arithmetic: one minute at a time.

A minute is working when its local wall-clock time falls in a window of its local weekday and
its local date is not a day off — the definition pytrs.calendars.working_time implements with
spans. Everything here is slow and obvious on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

MINUTE = 60


class BruteCalendar:
    def __init__(
        self,
        timezone: str,
        week: Sequence[Sequence[tuple[int, int]]],
        day_off: Callable[[date], bool] = lambda _day: False,
    ) -> None:
        self.tz = ZoneInfo(timezone)
        self.week = week
        self.day_off = day_off

    def minute_works(self, at: int) -> bool:
        local = datetime.fromtimestamp(at, self.tz)
        if self.day_off(local.date()):
            return False
        second = local.hour * 3600 + local.minute * 60 + local.second
        return any(start <= second < end for start, end in self.week[local.weekday()])

    def working_between(self, start: int, end: int) -> int:
        """Working seconds in [start, end); both on minute boundaries."""
        return sum(MINUTE for at in range(start, end, MINUTE) if self.minute_works(at))

    def add_working(self, start: int, seconds: int, limit_days: int = 60) -> int:
        """The end of the minute in which the budget (whole minutes) runs out."""
        if seconds == 0:
            return start
        left = seconds
        for at in range(start, start + limit_days * 86400, MINUTE):
            if self.minute_works(at):
                left -= MINUTE
                if left == 0:
                    return at + MINUTE
        raise AssertionError("budget not reached within the limit")
