"""Working-time arithmetic: hand-checked tables (Znuny's documented behaviour, DST nights,
windows across midnight) and hypothesis properties against a minute-by-minute counter."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pytrs.calendars import CalendarError, WorkingCalendar, always, calendar_from_definition
from pytrs.calendars.working_time import DAY

from .brute import BruteCalendar

H = 3600
WORKDAYS = ("mon", "tue", "wed", "thu", "fri")


def at(zone: str, *parts: int) -> int:
    """Epoch seconds of a local wall-clock time (the first one, when it occurs twice)."""
    return int(datetime(*parts, tzinfo=ZoneInfo(zone)).timestamp())  # type: ignore[misc]


def local(zone: str, instant: int) -> str:
    return datetime.fromtimestamp(instant, ZoneInfo(zone)).strftime("%a %Y-%m-%d %H:%M")


def calendar(zone: str = "Europe/Berlin", holidays: tuple[str, ...] = (), **hours: list[str]):
    return calendar_from_definition(
        "test", {"timezone": zone, "hours": hours, "holidays": list(holidays)}
    )


ZNUNY = calendar(**{day: ["08:00-17:00"] for day in WORKDAYS})
OFFICE = calendar(
    holidays=("2026-12-24", "12-25", "12-26", "01-01"),
    **{day: ["08:00-12:00", "13:00-17:00"] for day in WORKDAYS},
)
B = "Europe/Berlin"


# --- tables -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "budget", "due"),
    [
        # Znuny: created Friday 16:00 with a 2-hour budget on Mon-Fri 08:00-17:00 → Monday 09:00.
        ((2026, 12, 4, 16, 0), 2 * H, "Mon 2026-12-07 09:00"),
        # Created outside working hours: the clock starts at the next window.
        ((2026, 12, 4, 18, 30), 1 * H, "Mon 2026-12-07 09:00"),
        ((2026, 12, 5, 11, 0), 1 * H, "Mon 2026-12-07 09:00"),
        ((2026, 12, 7, 6, 0), 30 * 60, "Mon 2026-12-07 08:30"),
        # A budget that ends exactly at closing time ends there, not at the next opening.
        ((2026, 12, 7, 16, 0), 1 * H, "Mon 2026-12-07 17:00"),
        # Nine hours is one whole day.
        ((2026, 12, 7, 8, 0), 9 * H, "Mon 2026-12-07 17:00"),
        ((2026, 12, 7, 8, 0), 9 * H + 1, "Tue 2026-12-08 08:00"),
        # A week of working time from Monday morning is Friday evening.
        ((2026, 12, 7, 8, 0), 45 * H, "Fri 2026-12-11 17:00"),
    ],
)
def test_znuny_office_hours(start: tuple[int, ...], budget: int, due: str) -> None:
    assert local(B, ZNUNY.add_working(at(B, *start), budget)) == due


@pytest.mark.parametrize(
    ("start", "budget", "due"),
    [
        # The lunch break does not count.
        ((2026, 12, 7, 11, 0), 2 * H, "Mon 2026-12-07 14:00"),
        ((2026, 12, 7, 12, 30), 1 * H, "Mon 2026-12-07 14:00"),
        # Holidays are skipped: 24 (one-off), 25 and 26 (yearly) December.
        ((2026, 12, 23, 16, 0), 2 * H, "Mon 2026-12-28 09:00"),
        # 4 working hours from Friday 2026-12-04 15:00: 2 on Friday, 2 on Monday morning.
        ((2026, 12, 4, 15, 0), 4 * H, "Mon 2026-12-07 10:00"),
        # New Year's Day (yearly) is a Friday in 2027.
        ((2026, 12, 31, 16, 0), 2 * H, "Mon 2027-01-04 09:00"),
    ],
)
def test_office_hours_with_lunch_and_holidays(
    start: tuple[int, ...], budget: int, due: str
) -> None:
    assert local(B, OFFICE.add_working(at(B, *start), budget)) == due


def test_zero_budget_is_the_start_even_outside_working_time() -> None:
    saturday = at(B, 2026, 12, 5, 3, 0)
    assert ZNUNY.add_working(saturday, 0) == saturday
    with pytest.raises(ValueError, match="negative"):
        ZNUNY.add_working(saturday, -1)


def test_working_between_tables() -> None:
    friday, monday = at(B, 2026, 12, 4, 16, 0), at(B, 2026, 12, 7, 9, 0)
    assert ZNUNY.working_between(friday, monday) == 2 * H
    assert ZNUNY.working_between(monday, friday) == 0
    assert ZNUNY.working_between(friday, friday) == 0
    week = at(B, 2026, 12, 7, 0, 0)
    assert ZNUNY.working_between(week, week + 7 * DAY) == 45 * H
    assert OFFICE.working_between(at(B, 2026, 12, 21), at(B, 2026, 12, 28)) == 3 * 8 * H
    # A whole year: 52 weeks of 40 hours and one day, minus the weekday holidays of 2027
    # (01-01 Fri, 12-24 is 2026 only, 12-25 Sat and 12-26 Sun).
    year = OFFICE.working_between(at(B, 2027, 1, 1), at(B, 2028, 1, 1))
    assert year == (261 - 1) * 8 * H


def test_is_working() -> None:
    assert OFFICE.is_working(at(B, 2026, 12, 7, 8, 0))
    assert not OFFICE.is_working(at(B, 2026, 12, 7, 12, 0))
    assert OFFICE.is_working(at(B, 2026, 12, 7, 16, 59))
    assert not OFFICE.is_working(at(B, 2026, 12, 7, 17, 0))
    assert not OFFICE.is_working(at(B, 2026, 12, 24, 10, 0))  # holiday
    assert not OFFICE.is_working(at(B, 2026, 12, 5, 10, 0))  # Saturday


def test_always_is_24_7_in_any_zone() -> None:
    calendar_24_7 = always()
    assert calendar_24_7.name == "" and calendar_24_7.timezone == "UTC"
    start = at(B, 2026, 3, 29, 1, 30)  # across the spring-forward hour: all of it counts
    assert calendar_24_7.add_working(start, 5 * H) == start + 5 * H
    assert calendar_24_7.working_between(start, start + 5 * H) == 5 * H
    assert calendar_24_7.is_working(start)
    berlin = always("Europe/Berlin", "round the clock")
    assert berlin.name == "round the clock" and berlin.timezone == "Europe/Berlin"
    # The general arithmetic agrees with the 24/7 shortcut over a DST night.
    general = calendar(B, **{day: ["00:00-24:00"] for day in (*WORKDAYS, "sat", "sun")})
    assert general.add_working(start, 5 * H) == start + 5 * H
    assert general.working_between(start - DAY, start + DAY) == 2 * DAY


def test_windows_across_midnight_are_one_stretch() -> None:
    night = calendar(B, sun=["22:00-24:00"], mon=["00:00-06:00"])
    sunday = at(B, 2026, 12, 6, 23, 0)
    assert local(B, night.add_working(sunday, 3 * H)) == "Mon 2026-12-07 02:00"
    assert night.working_between(at(B, 2026, 12, 6, 21), at(B, 2026, 12, 7, 7)) == 8 * H
    assert night.is_working(at(B, 2026, 12, 6, 23, 59, 59))
    assert night.is_working(at(B, 2026, 12, 7, 0, 0))
    # From the start of the window, the whole night then the next Sunday.
    assert local(B, night.add_working(at(B, 2026, 12, 6, 22), 9 * H)) == "Sun 2026-12-13 23:00"


@pytest.mark.parametrize(
    ("zone", "night", "hours"),
    [
        # Spring forward (02:00 → 03:00): the window 01:00-04:00 is two hours long.
        ("Europe/Berlin", (2026, 3, 29), 2 * H),
        # Fall back (03:00 → 02:00): four hours.
        ("Europe/Berlin", (2026, 10, 25), 4 * H),
        ("America/New_York", (2026, 3, 8), 2 * H),
        ("America/New_York", (2026, 11, 1), 4 * H),
        # Lord Howe Island moves its clocks by half an hour.
        ("Australia/Lord_Howe", (2026, 10, 4), 2 * H + 1800),
        ("Australia/Lord_Howe", (2026, 4, 5), 3 * H + 1800),
        # An ordinary night.
        ("Europe/Berlin", (2026, 3, 22), 3 * H),
    ],
)
def test_a_window_on_a_dst_night(zone: str, night: tuple[int, int, int], hours: int) -> None:
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[date(*night).weekday()]
    cal = calendar(zone, **{weekday: ["01:00-04:00"]})
    midnight = at(zone, *night)
    assert cal.working_between(midnight - DAY, midnight + 2 * DAY) == hours
    assert cal.add_working(midnight, hours) == at(zone, *night, 4, 0)


def test_a_window_ending_in_the_repeated_hour_comes_in_two_pieces() -> None:
    # 2026-10-25 in Berlin: 02:00-02:59 happens twice; the window 01:00-02:30 covers
    # 01:00-02:30 CEST and 02:00-02:30 CET, but not 02:30-03:00 CEST in between.
    cal = calendar(B, sun=["01:00-02:30"])
    first_0100 = at(B, 2026, 10, 25, 1, 0)
    assert cal.working_between(first_0100, first_0100 + 4 * H) == 2 * H
    assert not cal.is_working(first_0100 + 90 * 60 + 1)  # 02:30 CEST
    assert cal.is_working(first_0100 + 2 * H)  # 02:00 CET
    assert cal.add_working(first_0100, 2 * H) == first_0100 + 2 * H + 1800


def test_a_calendar_without_working_time_is_refused() -> None:
    with pytest.raises(CalendarError, match="no working"):
        calendar(B)
    with pytest.raises(CalendarError, match="no working time for ten years"):
        # Every working day is a day off: the budget can never be spent.
        WorkingCalendar("off", "UTC", [((0, H),)] * 7, lambda _day: True).add_working(0, 60)


# --- properties against the minute-by-minute counter ---------------------------------------------

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata")
# The 2026 DST changes of those zones (and an ordinary Thursday): instants start near them.
NEAR = [
    at("Europe/Berlin", 2026, 3, 29, 1, 0) + H,  # 02:00 CET → 03:00 CEST
    at("Europe/Berlin", 2026, 10, 25, 1, 0) + 2 * H,  # 03:00 CEST → 02:00 CET
    at("America/New_York", 2026, 3, 8, 2, 0),
    at("America/New_York", 2026, 11, 1, 1, 0) + H,
    at("Australia/Lord_Howe", 2026, 4, 5, 1, 0) + H,
    at("Australia/Lord_Howe", 2026, 10, 4, 2, 0),
    at("UTC", 2026, 12, 3),
]
QUARTERS = list(range(0, 24 * 60 + 1, 15))  # window boundaries, in minutes


@st.composite
def day_windows(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    bounds = sorted(draw(st.sets(st.sampled_from(QUARTERS), max_size=6)))
    if len(bounds) % 2:
        bounds = bounds[:-1]
    return tuple((bounds[i] * 60, bounds[i + 1] * 60) for i in range(0, len(bounds), 2))


@st.composite
def calendars(draw: st.DrawFn) -> tuple[WorkingCalendar, BruteCalendar]:
    zone = draw(st.sampled_from(ZONES))
    week = [draw(day_windows()) for _ in range(7)]
    if not any(week):
        week[draw(st.integers(0, 6))] = ((0, DAY),) if draw(st.booleans()) else ((H, 2 * H),)
    base = date(2026, 3, 20)
    off = frozenset(
        base + timedelta(days=n) for n in draw(st.sets(st.integers(0, 270), max_size=30))
    )
    day_off = off.__contains__
    return WorkingCalendar("p", zone, week, day_off), BruteCalendar(zone, week, day_off)


# Most instants within hours of a change, the rest within days.
minute_instants = st.builds(
    lambda base, minutes: base + minutes * 60,
    st.sampled_from(NEAR),
    st.one_of(st.integers(-6 * 60, 6 * 60), st.integers(-3 * 24 * 60, 3 * 24 * 60)),
)
second_instants = st.builds(
    lambda base, seconds: base + seconds,
    st.sampled_from(NEAR),
    st.one_of(st.integers(-6 * H, 6 * H), st.integers(-3 * DAY, 3 * DAY)),
)


def _weekly(cal: WorkingCalendar) -> int:
    """Working seconds in an ordinary week of the calendar."""
    monday = at(cal.timezone, 2026, 6, 1)
    return cal.working_between(monday, monday + 7 * DAY)


SLOW = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(
    calendars(), minute_instants, st.one_of(st.integers(0, 12 * 60), st.integers(0, 3 * 24 * 60))
)
def test_working_between_matches_the_minute_counter(
    cals: tuple[WorkingCalendar, BruteCalendar], start: int, minutes: int
) -> None:
    cal, brute = cals
    end = start + minutes * 60
    assert cal.working_between(start, end) == brute.working_between(start, end)


@SLOW
@given(calendars(), minute_instants, st.integers(0, 8 * 60))
def test_add_working_matches_the_minute_counter(
    cals: tuple[WorkingCalendar, BruteCalendar], start: int, minutes: int
) -> None:
    cal, brute = cals
    # Keep the counter's walk short: at most about two weeks of this calendar's time.
    assume(minutes * 60 <= _weekly(cal) * 2)
    assert cal.add_working(start, minutes * 60) == brute.add_working(start, minutes * 60)


@SLOW
@given(calendars(), minute_instants)
def test_is_working_matches_the_minute_counter(
    cals: tuple[WorkingCalendar, BruteCalendar], instant: int
) -> None:
    cal, brute = cals
    assert cal.is_working(instant) == brute.minute_works(instant)
    assert cal.is_working(instant + 59) == brute.minute_works(instant)


FAST = settings(max_examples=300, deadline=None)


@FAST
@given(calendars(), second_instants, st.integers(1, 20 * DAY))
def test_counting_back_what_was_added_gives_the_budget(
    cals: tuple[WorkingCalendar, BruteCalendar], start: int, budget: int
) -> None:
    cal, _ = cals
    assume(budget <= _weekly(cal) * 52)
    due = cal.add_working(start, budget)
    assert due > start
    assert cal.working_between(start, due) == budget
    # The budget runs out in working time: the last second before the deadline worked.
    assert cal.is_working(due - 1)


@FAST
@given(calendars(), second_instants, st.integers(0, 10 * DAY))
def test_adding_what_was_counted_reaches_the_last_working_moment(
    cals: tuple[WorkingCalendar, BruteCalendar], start: int, length: int
) -> None:
    cal, _ = cals
    end = start + length
    counted = cal.working_between(start, end)
    reached = cal.add_working(start, counted)
    assert start <= reached <= end
    assert cal.working_between(reached, end) == 0


@FAST
@given(calendars(), second_instants, st.integers(0, 5 * DAY), st.integers(0, 5 * DAY))
def test_budgets_and_counts_add_up(
    cals: tuple[WorkingCalendar, BruteCalendar], start: int, first: int, second: int
) -> None:
    cal, _ = cals
    assert cal.add_working(cal.add_working(start, first), second) == cal.add_working(
        start, first + second
    )
    middle, end = start + first, start + first + second
    assert cal.working_between(start, end) == cal.working_between(
        start, middle
    ) + cal.working_between(middle, end)
