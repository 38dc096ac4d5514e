"""Loop protection beside Znuny: its `ticket_loop_protection` has no `id` (Znuny 7.0: only
sent_to and sent_date, each indexed). pytrs counts and purges there as Znuny does, so both
count the same sends (`responders/loop_protection.py`)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import text

from pytrs.config.model import LoopProtectionConfig
from pytrs.responders import loop_protection

from .conftest import Beside

pytestmark = pytest.mark.znuny

TODAY = date(2026, 3, 4)


async def _rows(beside: Beside) -> list[tuple[str, str]]:
    async with beside.znuny.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT sent_to, sent_date FROM ticket_loop_protection ORDER BY 1, 2")
        )
        return [(r[0], r[1]) for r in rows]


async def test_budget_counts_and_purges_in_znuny_s_table(beside: Beside) -> None:
    # A send Znuny counted yesterday and one today, for the same address.
    async with beside.znuny.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ticket_loop_protection (sent_to, sent_date) VALUES "
                "('ann@example.com', '2026-03-03'), ('ann@example.com', '2026-03-04')"
            )
        )
    async with beside.db.transaction() as conn:
        assert await loop_protection.take_budget(conn, "Ann@Example.com", TODAY, 2)
        assert not await loop_protection.take_budget(conn, "ann@example.com", TODAY, 2)
    assert await _rows(beside) == [("ann@example.com", "2026-03-04")] * 2
    config = LoopProtectionConfig(max_auto_responses_per_address_per_day=1)
    async with beside.db.transaction() as conn:
        answers = await loop_protection.clear_many(
            conn, ["bob@example.com", "bob@example.com", "ann@example.com"], config,
            now=datetime(2026, 3, 5, 8, 0),
        )  # fmt: skip
        assert [a is None for a in answers] == [True, False, True]
        assert await loop_protection.purge_loop_protection(conn, date(2026, 3, 5)) == 0
    assert await _rows(beside) == [
        ("ann@example.com", "2026-03-05"), ("bob@example.com", "2026-03-05")
    ]  # fmt: skip
