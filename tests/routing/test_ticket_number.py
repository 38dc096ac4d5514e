"""Ticket number generators: formats, check digits and detection (REFERENCE.md §6)."""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pytrs.routing import subject, ticket_number
from pytrs.routing.ticket_number import (
    GENERATORS,
    TicketNumberGenerator,
    checksum_digit,
    make_generator,
)

DAY = date(2024, 3, 7)


# --- check digit ---------------------------------------------------------------------------


def test_checksum_of_reference_example() -> None:
    # The example in Znuny's source: weighted sum 29 → 10 - 9 = 1.
    assert checksum_digit("200206231010001") == 1


def test_checksum_ten_becomes_one() -> None:
    # "0" sums to 0, 10 - 0 = 10, which Znuny turns into 1, not 0.
    assert checksum_digit("0") == 1
    assert checksum_digit("55") == 5  # 5*1 + 5*2 = 15 → 10 - 5


@pytest.mark.parametrize("bad", ["", "12a4", "１２"])
def test_checksum_rejects_non_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        checksum_digit(bad)


# --- formats -------------------------------------------------------------------------------


def test_date_checksum_reference_number() -> None:
    gen = make_generator("DateChecksum")
    tn = gen.build(10001, date(2002, 6, 23))
    assert tn == "2002062310100011"
    assert gen.is_valid(tn)


@pytest.mark.parametrize(
    ("day", "counter"),
    [(date(2024, 1, 1), 1), (date(1999, 12, 31), 99999), (date(2030, 7, 15), 4242)],
)
def test_date_checksum_round_trip(day: date, counter: int) -> None:
    gen = make_generator("DateChecksum")
    tn = gen.build(counter, day)
    assert tn.startswith(f"{day:%Y%m%d}10{counter:05d}")
    assert len(tn) == 16
    assert gen.is_valid(tn)
    assert gen.find(f"Re: [Ticket#{tn}] printer") == tn


def test_date_checksum_wrong_check_digit_is_invalid() -> None:
    gen = make_generator("DateChecksum")
    tn = gen.build(1, DAY)
    wrong = tn[:-1] + str((int(tn[-1]) + 1) % 10)
    assert not gen.is_valid(wrong)
    # find() does not check the digit, as in Znuny: the ticket lookup decides.
    assert gen.find(f"Ticket#{wrong}") == wrong


def test_date_checksum_counter_grows_beyond_five_digits() -> None:
    gen = make_generator("DateChecksum")
    tn = gen.build(123456, DAY)
    assert tn[:-1] == "2024030710123456"
    assert int(tn[-1]) == checksum_digit(tn[:-1])
    assert gen.is_valid(tn)
    assert gen.find(f"[Ticket#{tn}]") == tn


def test_date_checksum_ignores_min_counter_size() -> None:
    gen = make_generator("DateChecksum", min_counter_size=8)
    assert gen.build(7, DAY)[:-1] == "202403071000007"


def test_date_format() -> None:
    assert make_generator("Date").build(7, DAY) == "20240307107"
    formatted = make_generator("Date", date_formatted_counter=True, min_counter_size=6)
    assert formatted.build(7, DAY) == "2024030710000007"


def test_auto_increment_format() -> None:
    assert make_generator("AutoIncrement").build(42, DAY) == "1000042"
    assert make_generator("AutoIncrement", system_id="7", min_counter_size=3).build(5, DAY) == (
        "7005"
    )
    assert make_generator("AutoIncrement").build(1234567, DAY) == "101234567"


def test_random_format() -> None:
    gen = make_generator("Random", system_id="23")
    assert gen.build(0, DAY, random_digits=123) == "230000000123"
    assert gen.build(0, DAY, random_digits=9_999_999_999) == "239999999999"


def test_random_needs_random_digits() -> None:
    gen = make_generator("Random")
    with pytest.raises(ValueError, match="random_digits"):
        gen.build(1, DAY)
    with pytest.raises(ValueError, match="random_digits"):
        gen.build(1, DAY, random_digits=10**10)


def test_years_before_1000_are_padded() -> None:
    assert make_generator("Date").build(1, date(999, 1, 2)) == "09990102101"


def test_negative_counter_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        make_generator("AutoIncrement").build(-1, DAY)


def test_undetectable_number_rejected() -> None:
    # AutoIncrement detects at most min + 5 counter digits.
    with pytest.raises(ValueError, match="undetectable"):
        make_generator("AutoIncrement").build(10**10, DAY)


def test_counter_scope_and_daily() -> None:
    scopes = {name: make_generator(name).counter_scope for name in GENERATORS}
    assert scopes == {
        "DateChecksum": "DateChecksum",
        "Date": "Date",
        "AutoIncrement": "AutoIncrement",
        "Random": None,
    }
    assert [name for name in GENERATORS if make_generator(name).daily()] == [
        "DateChecksum",
        "Date",
    ]


def test_unknown_generator_is_named() -> None:
    with pytest.raises(ValueError, match="'Sequential'"):
        make_generator("Sequential")


@pytest.mark.parametrize(
    "kwargs",
    [{"system_id": "1a"}, {"system_id": ""}, {"hook": ""}, {"min_counter_size": 0}],
)
def test_bad_settings_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TicketNumberGenerator("Date", **kwargs)


# --- detection -----------------------------------------------------------------------------

SAMPLES = {
    "DateChecksum": "2024030710000123",
    "Date": "2024030710123",
    "AutoIncrement": "1000123",
    "Random": "100123456789",
}


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize(
    "template",
    [
        "Ticket#{tn}",
        "Ticket#: {tn}",
        "Ticket#:{tn}",
        "Ticket#:  {tn}",
        "ticket#{tn}",
        "TICKET#: {tn}",
        "[Ticket#{tn}] Re: x",
        "Re: printer broken [Ticket#{tn}]",
        "Aw: Re: printer broken [Ticket#{tn}].",
        "see Ticket#{tn}, thanks",
    ],
)
def test_find_forms(name: str, template: str) -> None:
    gen = make_generator(name)
    tn = SAMPLES[name]
    assert gen.is_valid(tn)
    assert gen.find(template.format(tn=tn)) == tn


@pytest.mark.parametrize("name", GENERATORS)
def test_find_needs_the_hook_right_before_the_number(name: str) -> None:
    gen = make_generator(name)
    tn = SAMPLES[name]
    for text in [tn, f"Ticket {tn}", f"Ticket#:   {tn}", f"Ticket# {tn}", f"#{tn}", ""]:
        assert gen.find(text) is None, text


@pytest.mark.parametrize(
    "text",
    [
        "Meeting on 20240307 at 10:00, call +49 30 1234567 or 0301234567",
        "Invoice 2024030710000123 is overdue",
        "Order #1000123 shipped",
    ],
)
def test_no_false_positive_without_hook(text: str) -> None:
    for name in GENERATORS:
        assert make_generator(name).find(text) is None


def test_plain_date_after_hook_is_not_a_date_number() -> None:
    assert make_generator("Date").find("Ticket#20240307") is None
    assert make_generator("DateChecksum").find("Ticket#2024030710") is None


@pytest.mark.parametrize(
    ("name", "foreign"),
    [
        ("DateChecksum", "2024030799000123"),
        ("Date", "2024030799123"),
        ("AutoIncrement", "9900123"),
        ("Random", "990123456789"),
    ],
)
def test_other_system_id(name: str, foreign: str) -> None:
    text = f"Re: [Ticket#{foreign}] x"
    assert make_generator(name).find(text) is None
    assert not make_generator(name).is_valid(foreign)
    lenient = make_generator(name, check_system_id=False)
    assert lenient.find(text) == foreign


def test_hook_with_regex_metacharacters() -> None:
    gen = make_generator("AutoIncrement", hook="Req[.*]+")
    assert gen.find("Re: [Req[.*]+1000123] x") == "1000123"
    assert gen.find("req[.*]+: 1000123") == "1000123"
    # Unescaped, "[.*]+" would match "." or "*" and find this.
    assert gen.find("Req..1000123") is None
    assert gen.find("Req*1000123") is None


def test_divider() -> None:
    gen = make_generator("Date", divider="-")
    assert gen.find("[Ticket#-2024030710123]") == "2024030710123"
    assert gen.find("[Ticket#: 2024030710123]") == "2024030710123"
    assert gen.find("[Ticket#2024030710123]") is None


def test_longest_match_kept() -> None:
    date_gen = make_generator("Date")
    assert date_gen.find("Ticket#2024030710123456789 x") == "2024030710123456789"
    auto = make_generator("AutoIncrement")
    assert auto.find("Ticket#101234567890") == "101234567890"
    # Longer than the pattern allows: not a number of ours, rather than a truncated one.
    assert auto.find("Ticket#1012345678901") is None
    assert date_gen.find("Ticket#20240307" + "10" + "1" * 41) is None


def test_first_match_wins_whatever_the_separator() -> None:
    gen = make_generator("AutoIncrement")
    assert gen.find("Ticket#: 1000001 and Ticket#1000002") == "1000001"


def test_find_all_distinct_in_order() -> None:
    gen = make_generator("AutoIncrement")
    text = "Ticket#1000002, ticket#: 1000001, Ticket#1000002, Ticket#99000001, Ticket#:1000003"
    assert gen.find_all(text) == ["1000002", "1000001", "1000003"]
    assert gen.find_all("nothing here") == []


def test_non_ascii_digits_do_not_count() -> None:
    gen = make_generator("AutoIncrement")
    assert gen.find("Ticket#10٠٠٠١٢٣") is None
    assert gen.find("Ticket#1000123٤") == "1000123"


def test_routing_modules_are_pure() -> None:
    # SPEC S1: routing/ imports neither asyncio, SQLAlchemy nor any server library.
    forbidden = {"asyncio", "sqlalchemy", "aiosmtpd", "aiosmtplib", "starlette", "socket"}
    for module in (ticket_number, subject):
        tree = ast.parse(Path(str(module.__file__)).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not {n.split(".")[0] for n in names} & forbidden, module.__name__


# --- properties ----------------------------------------------------------------------------


@st.composite
def generators_and_numbers(draw: st.DrawFn) -> tuple[TicketNumberGenerator, str]:
    min_size = draw(st.integers(1, 8))
    gen = make_generator(
        draw(st.sampled_from(GENERATORS)),
        system_id=draw(st.from_regex(r"[0-9]{1,3}", fullmatch=True)),
        check_system_id=draw(st.booleans()),
        min_counter_size=min_size,
        date_formatted_counter=draw(st.booleans()),
    )
    tn = gen.build(
        draw(st.integers(0, 10**min_size - 1)),
        draw(st.dates()),
        random_digits=draw(st.integers(0, 10**10 - 1)),
    )
    return gen, tn


# '#' is left out so that the surrounding text cannot contain a second hook.
NO_HOOK_TEXT = st.text(st.characters(exclude_characters="#"), max_size=60)


@given(generators_and_numbers(), NO_HOOK_TEXT, NO_HOOK_TEXT, st.sampled_from(["", ":", ": "]))
def test_built_number_found_in_any_text(
    gen_tn: tuple[TicketNumberGenerator, str], before: str, after: str, separator: str
) -> None:
    gen, tn = gen_tn
    assume(after[:1] not in set("0123456789"))
    assert gen.is_valid(tn)
    text = f"{before}{gen.hook}{separator}{tn}{after}"
    assert gen.find(text) == tn
    assert gen.find_all(text) == [tn]


@given(st.dates(), st.integers(0, 10**12))
def test_date_checksum_always_valid(day: date, counter: int) -> None:
    gen = make_generator("DateChecksum")
    tn = gen.build(counter, day)
    assert gen.is_valid(tn)
    assert gen.find(f"Ticket#{tn}") == tn
