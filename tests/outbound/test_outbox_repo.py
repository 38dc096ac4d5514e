"""The outbox repository: enqueue checks, claims and leases, stale outcomes, suppression."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pytrs.config import Config
from pytrs.outbound.delivery import Reply, RetryPolicy, settle
from pytrs.schema import outbox_repo
from pytrs.schema.database import Database, utcnow
from pytrs.schema.outbox_repo import OutboxMail

from .conftest import enqueue, rows

LEASE = timedelta(seconds=60)


async def test_enqueue_refuses_incomplete_mail(db: Database) -> None:
    async with db.transaction() as conn:
        for bad in (
            OutboxMail(b"x", "a@example.com", [], "<m@x>"),
            OutboxMail(b"", "a@example.com", ["b@example.com"], "<m@x>"),
            OutboxMail(b"x", "a@example.com", ["b@example.com"], ""),
            OutboxMail(b"x", "a@example.com", ["b@example.com"], "<" + "m" * 300 + ">"),
        ):
            with pytest.raises(ValueError):
                await outbox_repo.enqueue(conn, bad)


async def test_claims_are_leased_counted_and_exclusive(db: Database, sender_config: Config) -> None:
    await enqueue(db, sender_config, 3)
    first = await outbox_repo.claim(db, 2, LEASE)
    second = await outbox_repo.claim(db, 2, LEASE)
    assert [m.id for m in first] == [1, 2] and [m.id for m in second] == [3]
    assert await outbox_repo.claim(db, 2, LEASE) == []
    assert {m.attempts for m in first} == {1} and first[0].claim_token != second[0].claim_token
    assert await outbox_repo.release(db, first) == 2
    again = await outbox_repo.claim(db, 5, LEASE)
    assert [(m.id, m.attempts) for m in again] == [(1, 1), (2, 1)]  # release did not count


async def test_not_before_delays_a_mail(db: Database, sender_config: Config) -> None:
    mail = OutboxMail(b"x", "a@example.com", ["b@example.com"], "<m@x>")
    async with db.transaction() as conn:
        await outbox_repo.enqueue(conn, mail, not_before=utcnow() + timedelta(hours=1))
    assert await outbox_repo.claim(db, 5, LEASE) == []
    due = await outbox_repo.next_due(db)
    assert due is not None and due > utcnow() + timedelta(minutes=59)


async def test_an_outcome_under_a_lost_claim_is_not_recorded(
    db: Database, sender_config: Config
) -> None:
    await enqueue(db, sender_config)
    [slow] = await outbox_repo.claim(db, 1, timedelta(seconds=-1))  # its lease is already over
    [fast] = await outbox_repo.claim(db, 1, LEASE)
    assert fast.id == slow.id and fast.attempts == 2
    policy = RetryPolicy.from_config(sender_config.outbound)
    late = settle(slow, {r: Reply(250, "ok") for r in slow.pending}, policy, utcnow())
    assert await outbox_repo.settle(db, [late]) == [slow.id]
    [row] = await rows(db)
    assert (row.state, row.claim_token) == ("sending", fast.claim_token)


async def test_suppression_is_extended_and_expires(db: Database) -> None:
    now = utcnow()
    async with db.transaction() as conn:
        await outbox_repo.suppress(conn, "Gone@X.example", "550 5.1.1", now + timedelta(days=1))
        await outbox_repo.suppress(
            conn, "gone@x.example", "550 5.1.1 again", now + timedelta(days=2)
        )
        await outbox_repo.suppress(conn, "old@x.example", "550 5.1.1", now - timedelta(seconds=1))
        found = await outbox_repo.suppressed(conn, ["GONE@x.example", "old@x.example", "new@x"])
        assert list(found) == ["gone@x.example"]
        assert found["gone@x.example"].reason == "550 5.1.1 again"
        assert await outbox_repo.lift_suppression(conn, "gone@X.example")
        assert await outbox_repo.suppressed(conn, ["gone@x.example"]) == {}


async def test_counts(db: Database, sender_config: Config) -> None:
    await enqueue(db, sender_config, 2)
    await outbox_repo.claim(db, 1, LEASE)
    assert await outbox_repo.counts(db) == {"pending": 1, "sending": 1}
