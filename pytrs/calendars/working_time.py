"""Working-time arithmetic: weekly windows in a time zone, minus days off.

Place in the flow: pure functions under the escalation index and the scheduler. They turn a
budget of working seconds into a deadline (``add_working``) and measure the working time between
two instants (``working_between``). Instants are epoch seconds (ints); the calendar's wall clock
is only used to decide which instants are working ones.

The working time of a calendar is exactly the set of instants whose local wall-clock time falls
in a window of its local weekday, on a local date that is not a day off. On a spring-forward
night a window 01:00-04:00 is therefore two hours long, and on a fall-back night four hours; a
window ending in the repeated hour may come out as two pieces. Each local date's windows are
turned into epoch spans once and cached, so the arithmetic itself touches only integers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY = 86400
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A budget that finds no working time for this long would never end: the calendar is broken
# (say, every working day of the next years is a day off), and we say so instead of looping.
MAX_IDLE_DAYS = 3660
# The per-date cache only ever holds the dates near "now" in practice; the bound keeps a
# long-running process with stray far-away dates from growing without limit.
_CACHE_LIMIT = 40_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_FOREVER = 2**62  # an open end of a stretch of constant UTC offset

Window = tuple[int, int]  # seconds after local midnight, [start, end), 0 <= start < end <= DAY
Span = tuple[int, int]  # epoch seconds, [start, end)
DayOff = Callable[[date], bool]


class CalendarError(ValueError):
    """A calendar definition that cannot be used; the message is one line fit for
    ``pytrs config check``."""


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; raises CalendarError when zoneinfo does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a directory
        raise CalendarError(
            f"unknown time zone {name!r} (an IANA name like Europe/Berlin)"
        ) from None


def _never(_day: date) -> bool:
    return False


class WorkingCalendar:
    """Weekly working windows in a time zone, minus days off; immutable once built.

    ``week`` holds, for Monday through Sunday, the day's windows as (start, end) seconds after
    local midnight, sorted and not overlapping. ``day_off`` says whether a local date is off
    (holidays). ``definition`` is the JSON-able mapping the calendar was built from, if any.
    """

    __slots__ = (
        "_always",
        "_day_off",
        "_days",
        "_definition",
        "_name",
        "_timezone",
        "_tz",
        "_week",
    )

    def __init__(
        self,
        name: str,
        timezone: str,
        week: Sequence[Sequence[Window]],
        day_off: DayOff | None = None,
        definition: dict[str, object] | None = None,
    ) -> None:
        if len(week) != 7:
            raise CalendarError("a week has seven days of windows")
        self._name = name
        self._timezone = timezone
        self._tz = zone(timezone)
        self._week = tuple(_checked_day(WEEKDAYS[i], windows) for i, windows in enumerate(week))
        if not any(self._week):
            raise CalendarError("no working hours on any day of the week")
        self._day_off = day_off or _never
        self._always = day_off is None and all(day == ((0, DAY),) for day in self._week)
        self._days: dict[int, tuple[tuple[Span, ...], int]] = {}
        self._definition = definition

    @property
    def name(self) -> str:
        return self._name

    @property
    def timezone(self) -> str:
        return self._timezone

    @property
    def definition(self) -> dict[str, object] | None:
        """The JSON-able definition the calendar was built from (None for ``always()``)."""
        return self._definition

    def __repr__(self) -> str:
        return f"WorkingCalendar({self._name!r}, {self._timezone!r})"

    # --- the contract ----------------------------------------------------------------------

    def add_working(self, start: int, seconds: int) -> int:
        """The instant at which ``seconds`` of working time after ``start`` have passed.

        When ``start`` is outside working time the clock starts at the next working moment;
        ``add_working(t, 0) == t``. Raises CalendarError if no working time is found for ten
        years, and ValueError for a negative budget.
        """
        if seconds < 0:
            raise ValueError("a working-time budget cannot be negative")
        if seconds == 0 or self._always:
            return start + seconds
        left = seconds
        ordinal = self._ordinal(start)
        idle = 0
        while idle < MAX_IDLE_DAYS:
            spans, total = self._spans(ordinal)
            ordinal += 1
            if not total:
                idle += 1
                continue
            idle = 0
            if spans[0][0] >= start and total < left:
                left -= total  # the whole day is after start and does not finish the budget
                continue
            for span_start, span_end in spans:
                if span_end <= start:
                    continue
                begin = max(span_start, start)
                if span_end - begin >= left:
                    return begin + left
                left -= span_end - begin
        raise CalendarError(f"calendar {self._name!r}: no working time for ten years")

    def working_between(self, start: int, end: int) -> int:
        """Working seconds in [start, end); 0 when ``end <= start``."""
        if end <= start:
            return 0
        if self._always:
            return end - start
        total = 0
        for ordinal in range(self._ordinal(start), self._ordinal(end) + 1):
            spans, day_total = self._spans(ordinal)
            if not day_total:
                continue
            if spans[0][0] >= start and spans[-1][1] <= end:
                total += day_total
                continue
            for span_start, span_end in spans:
                overlap = min(span_end, end) - max(span_start, start)
                if overlap > 0:
                    total += overlap
        return total

    def is_working(self, at: int) -> bool:
        """Whether the instant ``at`` is working time."""
        if self._always:
            return True
        spans, _ = self._spans(self._ordinal(at))
        return any(span_start <= at < span_end for span_start, span_end in spans)

    # --- per local date -------------------------------------------------------------------

    def _ordinal(self, at: int) -> int:
        """The proleptic ordinal of the local date at the instant ``at``."""
        return datetime.fromtimestamp(at, self._tz).toordinal()

    def _spans(self, ordinal: int) -> tuple[tuple[Span, ...], int]:
        """The working spans of one local date (epoch, sorted, merged) and their total."""
        cached = self._days.get(ordinal)
        if cached is None:
            if len(self._days) >= _CACHE_LIMIT:
                self._days.clear()
            cached = self._days[ordinal] = self._compute(ordinal)
        return cached

    def _compute(self, ordinal: int) -> tuple[tuple[Span, ...], int]:
        windows = self._week[(ordinal - 1) % 7]  # ordinal 1 (0001-01-01) was a Monday
        if not windows or self._day_off(date.fromordinal(ordinal)):
            return (), 0
        # The local midnight as if local time were UTC: local wall times are offsets from it.
        midnight = (ordinal - _EPOCH_ORDINAL) * DAY
        pieces: list[Span] = []
        for seg_start, seg_end, offset in _segments(self._tz, midnight):
            for win_start, win_end in windows:
                begin = max(midnight + win_start - offset, seg_start)
                end = min(midnight + win_end - offset, seg_end)
                if begin < end:
                    pieces.append((begin, end))
        spans = _merged(pieces)
        return spans, sum(end - begin for begin, end in spans)


def _offset(tz: ZoneInfo, at: int) -> int:
    offset = datetime.fromtimestamp(at, tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _segments(tz: ZoneInfo, midnight: int) -> list[tuple[int, int, int]]:
    """The UTC offsets in force around a local date: (from, to, offset) with epoch bounds.

    Any instant whose local date is this one lies within a day of ``midnight``, so we look one
    day further on each side. A zone changes its offset at most once in three days, so either
    the offset is the same at both ends or there is exactly one change, found by bisection.
    """
    low, high = midnight - DAY, midnight + 2 * DAY
    before, after = _offset(tz, low), _offset(tz, high)
    if before == after:
        return [(-_FOREVER, _FOREVER, before)]
    while high - low > 1:  # invariant: offset(low) == before, offset(high) != before
        middle = (low + high) // 2
        if _offset(tz, middle) == before:
            low = middle
        else:
            high = middle
    return [(-_FOREVER, high, before), (high, _FOREVER, _offset(tz, high))]


def _merged(pieces: list[Span]) -> tuple[Span, ...]:
    """Sorted spans with touching or overlapping ones joined."""
    merged: list[Span] = []
    for begin, end in sorted(pieces):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return tuple(merged)


def _checked_day(day: str, windows: Sequence[Window]) -> tuple[Window, ...]:
    ordered = tuple(sorted((int(start), int(end)) for start, end in windows))
    for index, (start, end) in enumerate(ordered):
        if not 0 <= start < end <= DAY:
            raise CalendarError(f"{day}: window {start}-{end} is not within a day")
        if index and start < ordered[index - 1][1]:
            raise CalendarError(f"{day}: windows overlap")
    return ordered


def always(timezone: str = "UTC", name: str = "") -> WorkingCalendar:
    """A 24/7 calendar: every instant is working time."""
    return WorkingCalendar(name, timezone, [((0, DAY),)] * 7)


def epoch(moment: datetime) -> int:
    """Epoch seconds of an aware datetime (a helper for callers and tests)."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no instant")
    return int(moment.astimezone(UTC).timestamp())
