"""Postmaster filters beside Znuny: its `postmaster_filter` has no `id` and an `f_value` of
200 characters (`schema/filter_repo.py`, `postmaster/filter_rules.py`). Rules are stored and
read back in Znuny's order, rows Znuny wrote (NULL f_stop/f_not) load, an edit made in Znuny
is noticed, and a value longer than Znuny holds is refused, never cut."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from pytrs.postmaster.filter_rules import save_rules
from pytrs.schema import filter_repo
from pytrs.vocabulary.filter_rules import MatchRow, Rule, SetRow

from .conftest import Beside

pytestmark = pytest.mark.znuny

RULES = [
    Rule(
        name="010-vip",
        match=(
            MatchRow("From", r"@vip\.example\.org"),
            MatchRow("Subject", "unsubscribe", negate=True),
        ),
        set=(SetRow("X-PyTRS-Queue", "Misc"),),
        stop=True,
    ),
    Rule(
        name="020-junk",
        match=(MatchRow("Subject", "^SPAM"),),
        set=(SetRow("X-PyTRS-Ignore", "yes"),),
    ),
]


async def test_rules_round_trip_without_ids(beside: Beside) -> None:
    problems, _ = await save_rules(beside.db, RULES)
    assert problems == []
    assert await filter_repo.load_rules(beside.db) == RULES


async def test_rows_znuny_wrote_load_and_an_edit_there_is_noticed(beside: Beside) -> None:
    await save_rules(beside.db, RULES)
    before = await filter_repo.rules_version(beside.db)
    # Znuny's filter form: the filter's rows deleted and inserted again, f_stop/f_not NULL
    # where its form left them empty, one value changed (same row count).
    async with beside.znuny.engine.begin() as conn:
        await conn.execute(text("DELETE FROM postmaster_filter WHERE f_name = '020-junk'"))
        await conn.execute(
            text(
                "INSERT INTO postmaster_filter (f_name, f_stop, f_type, f_key, f_value, f_not) "
                "VALUES ('020-junk', NULL, 'Match', 'Subject', '^SPAM!', NULL), "
                "('020-junk', NULL, 'Set', 'X-PyTRS-Ignore', 'yes', NULL)"
            )
        )
    assert await filter_repo.rules_version(beside.db) != before
    loaded = await filter_repo.load_rules(beside.db)
    assert loaded[1] == Rule(
        name="020-junk",
        match=(MatchRow("Subject", "^SPAM!"),),
        set=(SetRow("X-PyTRS-Ignore", "yes"),),
    )


async def test_a_value_longer_than_znuny_holds_is_refused(beside: Beside) -> None:
    await save_rules(beside.db, RULES)
    long_rule = Rule(
        name="030-long",
        match=(MatchRow("Subject", "a" * 201),),
        set=(SetRow("X-PyTRS-Queue", "Misc"),),
    )
    problems, _ = await save_rules(beside.db, [*RULES, long_rule])
    assert [(p.rule, p.field) for p in problems] == [("030-long", "match[0].value")]
    assert "201 characters" in problems[0].why and "200" in problems[0].why
    assert await filter_repo.load_rules(beside.db) == RULES  # nothing changed
    # 200 characters fit.
    fitting = Rule(
        name="030-long",
        match=(MatchRow("Subject", "a" * 200),),
        set=(SetRow("X-PyTRS-Queue", "Misc"),),
    )
    assert (await save_rules(beside.db, [*RULES, fitting]))[0] == []
