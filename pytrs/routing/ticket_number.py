"""Ticket numbers: format them, check them, and find them in mail text.

Place in the flow: the postmaster worker asks ``find()`` for a ticket number in the subject (and,
if configured, the body, attachments or raw mail) to detect a follow-up; when a new ticket is
created the database layer allocates a counter under ``counter_scope`` and asks ``build()`` for
the number. This module is pure: it allocates nothing and reads no clock, so the caller decides
which day (and therefore which time zone) a ticket belongs to.

Semantics follow Znuny's ``Kernel::System::Ticket::Number::*`` generators (REFERENCE.md §6).
Deliberate differences, each explained where it is made:

* a digit run longer than the generator's pattern allows is not a match at all (Znuny returns
  its truncated prefix, which can name a different ticket);
* the earliest hook in the text wins whichever separator it uses (Znuny first searches the whole
  text for ``<hook><divider>`` and only then for ``<hook>:``);
* only ASCII digits count as digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

GENERATORS = ("DateChecksum", "Date", "AutoIncrement", "Random")

# DateChecksum always pads its counter to five digits, whatever MinCounterSize says (Znuny).
_CHECKSUM_COUNTER_SIZE = 5
# Random numbers are the system id followed by this many random digits.
_RANDOM_SIZE = 10


@dataclass(frozen=True, slots=True)
class TicketNumberGenerator:
    """One configured ticket number generator (``[ticket] number_generator`` and friends).

    Raises ValueError on construction for an unknown generator name, a system id that is not
    a string of digits, an empty hook or a minimum counter size below 1.
    """

    name: str
    system_id: str = "10"
    hook: str = "Ticket#"
    check_system_id: bool = True
    min_counter_size: int = 5
    date_formatted_counter: bool = False
    # Znuny's Ticket::HookDivider; the subject builder puts it between hook and number.
    divider: str = ""

    def __post_init__(self) -> None:
        if self.name not in GENERATORS:
            raise ValueError(
                f"unknown ticket number generator {self.name!r}; expected one of "
                + ", ".join(GENERATORS)
            )
        # The system id becomes part of a regular expression and of every number, so only
        # plain ASCII digits are safe there.
        if not (self.system_id.isascii() and self.system_id.isdigit()):
            raise ValueError(f"system id must be ASCII digits, not {self.system_id!r}")
        # An empty hook would turn every long digit run in a mail (phone numbers, order
        # numbers, dates) into a candidate follow-up.
        if not self.hook:
            raise ValueError("ticket hook must not be empty")
        if self.min_counter_size < 1:
            raise ValueError(f"min_counter_size must be at least 1, not {self.min_counter_size}")

    @property
    def counter_scope(self) -> str | None:
        """Key under which the caller keeps this generator's counter; None if none is needed.

        Date-based scopes restart every day: the caller combines the key with the day.
        """
        return None if self.name == "Random" else self.name

    def daily(self) -> bool:
        """True if the counter restarts every day (Date and DateChecksum)."""
        return self.name in ("Date", "DateChecksum")

    def build(self, counter: int, day: date, random_digits: int | None = None) -> str:
        """Format the ticket number for an allocated counter on ``day``.

        ``random_digits`` is used (and required) only by the Random generator, which ignores
        ``counter``. Raises ValueError for a negative counter, missing or out-of-range random
        digits, or a number that ``find()`` could not detect again (too many digits).
        """
        tn = self._format(counter, day, random_digits)
        # A number nobody can recognise in a reply would silently break every follow-up to
        # its ticket, so refuse to hand it out.
        if not self.is_valid(tn):
            raise ValueError(f"counter {counter} gives an undetectable ticket number {tn!r}")
        return tn

    def _format(self, counter: int, day: date, random_digits: int | None) -> str:
        sid = self.system_id
        if self.name == "Random":
            if random_digits is None:
                raise ValueError("the Random generator needs random_digits")
            if not 0 <= random_digits < 10**_RANDOM_SIZE:
                raise ValueError(f"random_digits must have at most {_RANDOM_SIZE} digits")
            return f"{sid}{random_digits:0{_RANDOM_SIZE}d}"
        if counter < 0:
            raise ValueError(f"counter must not be negative, not {counter}")
        if self.name == "AutoIncrement":
            return f"{sid}{counter:0{self.min_counter_size}d}"
        # Formatted by hand: strftime("%Y") does not pad years before 1000 on every platform.
        ymd = f"{day.year:04d}{day.month:02d}{day.day:02d}"
        if self.name == "Date":
            width = self.min_counter_size if self.date_formatted_counter else 1
            return f"{ymd}{sid}{counter:0{width}d}"
        base = f"{ymd}{sid}{counter:0{_CHECKSUM_COUNTER_SIZE}d}"
        return f"{base}{checksum_digit(base)}"

    def is_valid(self, tn: str) -> bool:
        """True if ``tn`` is a number ``find()`` could return, with a correct check digit.

        ``find()`` does not verify DateChecksum check digits (see there); this does.
        """
        if _core_regex(self._core()).fullmatch(tn) is None:
            return False
        if self.name == "DateChecksum":
            return checksum_digit(tn[:-1]) == int(tn[-1])
        return True

    def find(self, text: str) -> str | None:
        """The first ticket number after the hook in ``text`` (Znuny's GetTNByString), or None.

        Accepted forms, case-insensitively: ``<hook><divider><number>`` and ``<hook>:`` followed
        by up to two whitespace characters and the number. The check digit is not verified, as
        in Znuny: numbers from a previous Date generator keep threading after a switch to
        DateChecksum, and the ticket lookup rejects numbers that do not exist anyway.
        """
        match = self._regex().search(text)
        return match.group(1) if match else None

    def find_all(self, text: str) -> list[str]:
        """Every distinct ticket number after a hook in ``text``, in order of appearance."""
        found = (m.group(1) for m in self._regex().finditer(text))
        return list(dict.fromkeys(found))

    def _core(self) -> str:
        return _number_core(
            self.name, self.system_id if self.check_system_id else "", self.min_counter_size
        )

    def _regex(self) -> re.Pattern[str]:
        return _search_regex(self.hook, self.divider, self._core())


def checksum_digit(digits: str) -> int:
    """The DateChecksum check digit of ``digits`` (date + system id + counter).

    Weights 1, 2, 1, 2, … from the left, products summed as they are (no digit sums), then
    10 minus the sum modulo 10, where 10 becomes 1. Raises ValueError unless ``digits`` is a
    non-empty string of ASCII digits.
    """
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"checksum needs ASCII digits, not {digits!r}")
    total = sum(int(d) * (1 + i % 2) for i, d in enumerate(digits))
    check = 10 - total % 10
    # Znuny maps 10 to 1, not 0; numbers already issued depend on it.
    return 1 if check == 10 else check


def make_generator(
    name: str,
    system_id: str = "10",
    hook: str = "Ticket#",
    check_system_id: bool = True,
    min_counter_size: int = 5,
    *,
    divider: str = "",
    date_formatted_counter: bool = False,
) -> TicketNumberGenerator:
    """The generator configured by ``[ticket]``; ValueError naming an unknown generator."""
    return TicketNumberGenerator(
        name=name,
        system_id=system_id,
        hook=hook,
        check_system_id=check_system_id,
        min_counter_size=min_counter_size,
        date_formatted_counter=date_formatted_counter,
        divider=divider,
    )


def _number_core(name: str, sid: str, min_size: int) -> str:
    """The number pattern of a generator (REFERENCE.md §6); ``sid`` is "" without the check."""
    # [0-9] rather than \d: \d also matches other scripts' digits, which no generator emits.
    if name == "AutoIncrement":
        return f"{sid}[0-9]{{{min_size},{min_size + 5}}}"
    if name == "Date":
        return f"[0-9]{{8}}{sid}[0-9]{{1,40}}"
    if name == "DateChecksum":
        return f"[0-9]{{8}}{sid}[0-9]{{4,40}}"
    return f"{sid}[0-9]{{2,20}}"


# find() runs on every incoming mail, often several times, so patterns are compiled once per
# configuration. A slots dataclass cannot hold a cached_property, hence module-level caches.
@lru_cache(maxsize=64)
def _search_regex(hook: str, divider: str, core: str) -> re.Pattern[str]:
    # Znuny lets the repetition run greedily and stops at 40 digits, returning a truncated
    # number from a longer run. A longer run is not one of our numbers, so (?![0-9]) makes it
    # no match at all instead.
    separator = f"(?:{re.escape(divider)}|:\\s{{0,2}})"
    return re.compile(f"{re.escape(hook)}{separator}({core})(?![0-9])", re.IGNORECASE)


@lru_cache(maxsize=64)
def _core_regex(core: str) -> re.Pattern[str]:
    return re.compile(core)
