"""Subject cleaning and building, and ticket titles (REFERENCE.md §6)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytrs.routing.subject import (
    CUT_MARKER,
    NO_SUBJECT,
    build_subject,
    clean_subject,
    ticket_title,
)

TN = "2024030710000123"
OTHER = "2024030610000456"


# --- cleaning ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        f"[Ticket#{TN}] Printer broken",
        f"[Ticket#: {TN}] Printer broken",
        f"[Ticket#:{TN}] Printer broken",
        f"[ Ticket#{TN} ] Printer broken",
        f"Printer broken [Ticket#{TN}]",
        f"Printer [Ticket#{TN}] broken",
        f"Ticket#{TN} Printer broken",
        f"Ticket#: {TN} Printer broken",
        f"Printer broken Ticket#:{TN}",
        f"[ticket#{TN}] Printer broken",
        f"Re: [Ticket#{TN}] Printer broken",
        f"Re: Re[2]: RE: Fwd: Printer broken [Ticket#{TN}]",
        "Re:  Printer    broken ",
        "Printer broken",
    ],
)
def test_clean_removes_tag_and_prefixes(subject: str) -> None:
    assert clean_subject(subject, TN) == "Printer broken"


def test_clean_prefix_run() -> None:
    assert clean_subject("Re: Re[2]: RE: Fwd: x", TN) == "x"
    assert clean_subject("re: FWD[3]: fwd: x", None) == "x"
    # Reply and forward prefixes are one run (Znuny would leave "Re: x" here).
    assert clean_subject("Fwd: Re: x", None) == "x"


def test_clean_prefix_needs_colon_and_space() -> None:
    assert clean_subject("Re:x", None) == "Re:x"
    assert clean_subject("Rex: y", None) == "Rex: y"
    assert clean_subject("Regarding: y", None) == "Regarding: y"
    # ...except at the end, where nothing can follow.
    assert clean_subject("Re: Re:", None) == ""
    assert clean_subject("Re: x Re:", None) == "x Re:"


def test_clean_only_leading_prefixes() -> None:
    assert clean_subject("Question Re: invoice", None) == "Question Re: invoice"


def test_foreign_prefixes_kept_unless_configured() -> None:
    assert clean_subject("AW: Re: x", None) == "AW: Re: x"
    assert clean_subject("AW: Re: x", None, re_prefixes=("Re", "AW")) == "x"
    assert clean_subject("WG: x", None, fwd_prefixes=("Fwd", "WG")) == "x"


def test_prefixes_are_literal() -> None:
    # Znuny would treat "R.E" as a regular expression and strip "RxE: ".
    assert clean_subject("RxE: x", None, re_prefixes=("R.E",)) == "RxE: x"
    assert clean_subject("R.E: x", None, re_prefixes=("R.E",)) == "x"
    assert clean_subject("Re: x", None, re_prefixes=("",), fwd_prefixes=()) == "Re: x"


def test_other_ticket_numbers_kept() -> None:
    subject = f"[Ticket#{OTHER}] [Ticket#{TN}] x Ticket#{OTHER}"
    assert clean_subject(subject, TN) == f"[Ticket#{OTHER}] x Ticket#{OTHER}"


def test_clean_all_numbers_removes_bracketed_tags() -> None:
    subject = f"[Ticket#{OTHER}] [Ticket#: 99] [Ticket#{TN}] x Ticket#{OTHER}"
    assert clean_subject(subject, TN, clean_all_numbers=True) == f"x Ticket#{OTHER}"
    assert clean_subject(f"[Ticket#{OTHER}] x", None, clean_all_numbers=True) == "x"


def test_longer_number_is_another_ticket() -> None:
    assert clean_subject(f"Ticket#{TN}9 x", TN) == f"Ticket#{TN}9 x"
    assert clean_subject(f"[Ticket#{TN}9] x", TN) == f"[Ticket#{TN}9] x"


def test_without_ticket_number_only_prefixes_go() -> None:
    assert clean_subject(f"Re: [Ticket#{TN}] x", None) == f"[Ticket#{TN}] x"
    assert clean_subject(f"Re: [Ticket#{TN}] x", "") == f"[Ticket#{TN}] x"


def test_hook_with_metacharacters_and_divider() -> None:
    assert clean_subject("[Req(1)+-42] x", "42", hook="Req(1)+", divider="-") == "x"
    assert clean_subject("[Req(1)+: 42] x", "42", hook="Req(1)+", divider="-") == "x"
    assert clean_subject("[Req11-42] x", "42", hook="Req(1)+", divider="-") == "[Req11-42] x"


def test_size_cut() -> None:
    long = "word " * 30
    cleaned = clean_subject(long, None, size=12)
    assert cleaned == "word word wo" + CUT_MARKER
    assert clean_subject("a" * 20, None, size=10) == "a" * 10 + " [...]"
    assert clean_subject("a" * 10, None, size=10) == "a" * 10
    assert clean_subject(long, None, size=0) == long.strip()


def test_size_counts_after_cleaning() -> None:
    assert clean_subject(f"Re: [Ticket#{TN}] " + "a" * 10, TN, size=10) == "a" * 10


def test_negative_size_rejected() -> None:
    with pytest.raises(ValueError):
        clean_subject("x", None, size=-1)


# --- building ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject_format", "kind", "expected"),
    [
        ("Left", "new", f"[Ticket#{TN}] Printer broken"),
        ("Right", "new", f"Printer broken [Ticket#{TN}]"),
        ("None", "new", "Printer broken"),
        ("Left", "reply", f"Re: [Ticket#{TN}] Printer broken"),
        ("Right", "reply", f"Re: Printer broken [Ticket#{TN}]"),
        ("None", "reply", "Re: Printer broken"),
        ("Left", "forward", f"Fwd: [Ticket#{TN}] Printer broken"),
        ("right", "forward", f"Fwd: Printer broken [Ticket#{TN}]"),
        ("none", "forward", "Fwd: Printer broken"),
    ],
)
def test_build(subject_format: str, kind: str, expected: str) -> None:
    incoming = f"RE: Re: Printer broken [Ticket#{TN}]"
    assert build_subject(incoming, TN, subject_format=subject_format, kind=kind) == expected


def test_build_with_divider_and_prefixes() -> None:
    built = build_subject("AW: x", "42", divider=": ", kind="reply", re_prefix="AW")
    assert built == "AW: [Ticket#: 42] x"
    assert build_subject(built, "42", divider=": ", kind="reply", re_prefix="AW") == built
    assert build_subject("x", "42", kind="reply", re_prefix="") == "[Ticket#42] x"


def test_build_empty_subject() -> None:
    assert build_subject("", TN) == f"[Ticket#{TN}]"
    assert build_subject("", TN, subject_format="None", kind="forward") == "Fwd:"
    assert build_subject("Re: ", TN, subject_format="Right", kind="reply") == f"Re: [Ticket#{TN}]"


def test_build_passes_clean_options() -> None:
    subject = f"[Ticket#{OTHER}] " + "a" * 20
    assert build_subject(subject, TN, size=5, clean_all_numbers=True) == (
        f"[Ticket#{TN}] aaaaa [...]"
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"subject_format": "Middle"}, ValueError),
        ({"kind": "bounce"}, ValueError),
        ({"sizes": 3}, TypeError),
    ],
)
def test_build_rejects_unknown(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        build_subject("x", TN, **kwargs)


SUBJECTS = [
    "Printer broken",
    "Re: Fwd: Printer broken",
    "AW: Printer broken",
    f"[Ticket#{OTHER}] merged",
    "",
    "x" * 150,
    "word " * 40,
]


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("subject_format", ["Left", "Right", "None"])
@pytest.mark.parametrize("kind", ["new", "reply", "forward"])
def test_build_is_idempotent(subject: str, subject_format: str, kind: str) -> None:
    built = build_subject(subject, TN, subject_format=subject_format, kind=kind)
    assert build_subject(built, TN, subject_format=subject_format, kind=kind) == built
    cleaned = clean_subject(built, TN)
    assert clean_subject(cleaned, TN) == cleaned


# --- titles --------------------------------------------------------------------------------


def test_ticket_title() -> None:
    assert ticket_title("  Printer\r\n\tbroken  ") == "Printer broken"
    assert ticket_title("a\x00b") == "a b"
    assert ticket_title("abc def", limit=4) == "abc"
    assert ticket_title("x" * 300) == "x" * 255
    assert ticket_title("Re: kept as is") == "Re: kept as is"


@pytest.mark.parametrize("subject", ["", "   ", "\r\n", "\x00"])
def test_ticket_title_without_subject(subject: str) -> None:
    assert ticket_title(subject) == NO_SUBJECT


def test_ticket_title_bad_limit() -> None:
    with pytest.raises(ValueError):
        ticket_title("x", limit=0)


# --- properties ----------------------------------------------------------------------------

TOKENS = st.sampled_from(
    [
        "Re: ",
        "RE[2]: ",
        "Fwd: ",
        "AW: ",
        "Re:",
        f"[Ticket#{TN}]",
        f"[ Ticket#: {TN} ]",
        f"Ticket#{TN}",
        f"[Ticket#{OTHER}]",
        "printer",
        "broken",
        " ",
        "  ",
        "\t",
        "[",
        "]",
        "#",
    ]
)


@given(
    st.text(max_size=300),
    st.one_of(st.none(), st.just(TN), st.text(max_size=20)),
    st.integers(0, 120),
    st.booleans(),
    st.text(max_size=10),
    st.lists(st.text(max_size=5), max_size=3),
)
def test_clean_never_raises_or_grows(
    subject: str, tn: str | None, size: int, clean_all: bool, hook: str, prefixes: list[str]
) -> None:
    cleaned = clean_subject(
        subject,
        tn,
        hook=hook or "Ticket#",
        re_prefixes=prefixes,
        size=size,
        clean_all_numbers=clean_all,
    )
    limit = size + len(CUT_MARKER) if size else len(subject)
    assert len(cleaned) <= limit
    assert len(ticket_title(subject)) <= 255


@given(st.lists(TOKENS, max_size=30).map("".join), st.sampled_from([0, 20, 100]), st.booleans())
def test_clean_is_idempotent(subject: str, size: int, clean_all: bool) -> None:
    once = clean_subject(subject, TN, size=size, clean_all_numbers=clean_all)
    assert clean_subject(once, TN, size=size, clean_all_numbers=clean_all) == once
