"""Trimming quoted history off an agent's answer before it is relayed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytrs.responders.quoting import trim_quoted


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Fixed.\n\nOn Mon, 1 Jan 2026, Alice <a@x> wrote:\n> help\n", "Fixed."),
        ("Erledigt.\n\nAm 01.01.2026 um 10:00 schrieb Alice <a@x>:\n> Hilfe\n", "Erledigt."),
        ("Réparé.\n\nLe lun. 1 janv. 2026, Alice a écrit :\n> aide\n", "Réparé."),
        ("Done.\n-----Original Message-----\nFrom: Alice\nhelp\n", "Done."),
        ("Done.\n\nFrom: Alice <a@x>\nSent: Monday\nTo: support\n\nhelp\n", "Done."),
        ("Done.\n\n> help\n> more\n\n", "Done."),
        ("> I think\nYes, it is.\n", "> I think\nYes, it is."),  # inline quoting stays
        ("From: the manual\nstep one\n", "From: the manual\nstep one"),  # not a header block
    ],
)
def test_trims_the_quoted_history(text: str, kept: str) -> None:
    assert trim_quoted(text) == kept


def test_never_leaves_nothing() -> None:
    only_quote = "On Mon, Alice wrote:\n> help\n"
    assert trim_quoted(only_quote) == only_quote.rstrip()


@given(st.text(max_size=400))
def test_result_is_a_prefix_and_never_empty_unless_input_is(text: str) -> None:
    result = trim_quoted(text)
    assert "\n".join(text.splitlines()).startswith(result) or result == text.rstrip()
    assert bool(result.strip()) == bool(text.strip())
