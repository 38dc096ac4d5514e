"""Loop protection: every reason not to auto-answer, and the per-address daily budget on both
engines, including two engines racing for the last auto-response of the day."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from pytrs.config import Config, ConfigError, parse_config
from pytrs.parsers.mail import parse_mail
from pytrs.parsers.model import ParsedMail
from pytrs.responders.loop_protection import (
    LoopPolicy,
    Recipient,
    clear_many,
    clear_to_send,
    may_auto_answer,
    purge_loop_protection,
    take_budget,
)
from pytrs.responders.message import new_message_id
from pytrs.schema.database import Database, create_database
from pytrs.schema.tables import address_suppression, ticket_loop_protection

from ..conftest import make_config
from ..helpers import make_mail

DATA = Path(__file__).resolve().parents[1] / "data" / "parsers"
TODAY = date(2026, 5, 24)


@pytest.fixture(scope="module")
def policy() -> LoopPolicy:
    return LoopPolicy.build(make_config({"url": "sqlite+aiosqlite:///unused.db"}))


def mail(**kw: Any) -> ParsedMail:
    extra = kw.pop("extra", None)
    return parse_mail(make_mail(extra=extra, **kw))


def reasons(verdict: Any) -> list[str]:
    return [r.reason for r in verdict.refusals]


# --- may_auto_answer ------------------------------------------------------------------------------


def test_an_ordinary_mail_is_answered_to_its_sender(policy: LoopPolicy) -> None:
    verdict = may_auto_answer(mail(), policy)
    assert verdict.allowed and verdict.refusals == ()
    assert verdict.recipients == (Recipient("alice@customer.example", "Alice Customer"),)
    assert verdict.recipients[0].header == "Alice Customer <alice@customer.example>"


def test_reply_to_wins_over_from_and_each_address_is_judged(policy: LoopPolicy) -> None:
    reply_to = "Desk <desk@customer.example>, noreply@customer.example, Support+x@Example.com"
    verdict = may_auto_answer(mail(extra={"Reply-To": reply_to}), policy)
    assert [r.address for r in verdict.recipients] == ["desk@customer.example"]
    assert [(r.reason, r.address) for r in verdict.refusals] == [
        ("no-auto-response-address", "noreply@customer.example"),
        ("system-address", "support+x@example.com"),
    ]


def test_recipients_are_parsed_addresses_never_display_text(policy: LoopPolicy) -> None:
    raw = make_mail(sender="x@example.org").replace(
        b"From: x@example.org",
        b"From: =?utf-8?q?victim=40external.example=2C_x?= <att@evil.example>",
    )
    verdict = may_auto_answer(parse_mail(raw), policy)
    assert [r.address for r in verdict.recipients] == ["att@evil.example"]
    assert verdict.recipients[0].header == '"victim@external.example, x" <att@evil.example>'


def test_one_auto_response_has_at_most_max_recipients(policy: LoopPolicy) -> None:
    many = ", ".join(f"u{n}@spam.example" for n in range(1000))
    verdict = may_auto_answer(mail(extra={"Reply-To": many}), policy)
    assert [r.address for r in verdict.recipients] == [f"u{n}@spam.example" for n in range(5)]
    [refusal] = verdict.refusals
    assert refusal.reason == "too-many-recipients" and "995 more" in refusal.detail
    two = replace(policy, max_recipients=2)
    assert len(may_auto_answer(mail(extra={"Reply-To": many}), two).recipients) == 2


FLAGS = [
    ({"bounce": object()}, "bounce"),
    ({"is_out_of_office": True, "is_auto_reply": True}, "out-of-office"),
    ({"is_auto_reply": True}, "auto-reply"),
    ({"is_list": True}, "mailing-list"),
    ({"loop": True}, "loop"),
]


@pytest.mark.parametrize(("flags", "reason"), FLAGS)
def test_parser_flags_refuse(policy: LoopPolicy, flags: dict[str, Any], reason: str) -> None:
    verdict = may_auto_answer(replace(mail(), **flags), policy)
    assert not verdict.allowed and reasons(verdict) == [reason]


@pytest.mark.parametrize(
    ("file", "reason"),
    [
        ("dsn-postfix.eml", "bounce"),
        ("oof-exchange-en.eml", "out-of-office"),
        ("oof-de-abwesenheitsnotiz.eml", "out-of-office"),
        ("autoreply-rfc3834.eml", "auto-reply"),
        ("autoreply-x-autoreply.eml", "auto-reply"),
        ("list-mailman.eml", "auto-reply"),  # Precedence: list is also an auto-reply marker
        ("list-x-mailing-list.eml", "mailing-list"),
    ],
)
def test_real_robot_mail_is_never_answered(policy: LoopPolicy, file: str, reason: str) -> None:
    parsed = parse_mail((DATA / file).read_bytes())
    verdict = may_auto_answer(parsed, policy)
    assert not verdict.allowed
    assert reasons(verdict)[0] in {reason, "bounce", "out-of-office", "auto-reply", "mailing-list"}


@pytest.mark.parametrize(
    ("value", "refused"),
    [("yes", True), ("1", True), ("anything", True), ("false", False), ("No", False), ("", False)],
)
def test_the_loop_control_header(policy: LoopPolicy, value: str, refused: bool) -> None:
    verdict = may_auto_answer(mail(), policy, control={"X-PyTRS-Loop": value})
    assert verdict.allowed is not refused
    if refused:
        assert verdict.refusals[0].reason == "loop-header"
        assert value in verdict.refusals[0].detail


def test_the_legacy_control_header_name_counts_too(policy: LoopPolicy) -> None:
    assert not may_auto_answer(mail(), policy, control={"x-otrs-loop": "yes"}).allowed


def test_auto_reply_to_a_closed_ticket(policy: LoopPolicy) -> None:
    closed = may_auto_answer(mail(), policy, ticket_closed=True)
    assert reasons(closed) == ["closed-ticket"]
    for kind in ("auto reject", "auto follow up", "auto reply/new ticket"):
        assert may_auto_answer(mail(), policy, response_type=kind, ticket_closed=True).allowed


def test_our_own_mail_coming_back(policy: LoopPolicy) -> None:
    marked = may_auto_answer(mail(), policy, marker_verified=True)
    assert reasons(marked) == ["own-mail"] and "marker" in marked.refusals[0].detail
    ours = mail(message_id=new_message_id("example.com"))
    assert reasons(may_auto_answer(ours, policy)) == ["own-mail"]
    # A customer's answer to our mail names it in In-Reply-To: that is a follow-up to answer.
    answer = mail(in_reply_to=new_message_id("example.com"))
    assert may_auto_answer(answer, policy).allowed
    # Someone else's domain with the same shape is not ours.
    assert may_auto_answer(mail(message_id="<20260101.ab.pytrs@other.example>"), policy).allowed


def test_message_id_domain_from_the_configuration() -> None:
    config = make_config(
        {"url": "sqlite+aiosqlite:///x.db"}, outbound={"message_id_domain": "mx.example.net"}
    )
    policy = LoopPolicy.build(config)
    assert policy.is_own_message_id(new_message_id("mx.example.net"))
    assert policy.is_own_message_id(new_message_id("example.com"))  # the system addresses' domain


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@mx.example.org", "postmaster@example.org", "no-reply@shop.example",
        "NoReply@shop.example", "do-not-reply@bank.example", "DoNotReply@bank.example",
    ],
)  # fmt: skip
def test_no_auto_response_addresses(policy: LoopPolicy, sender: str) -> None:
    verdict = may_auto_answer(mail(sender=sender), policy)
    assert reasons(verdict) == ["no-auto-response-address"]
    assert verdict.refusals[0].address == sender.lower()


def test_system_addresses_and_their_tags(policy: LoopPolicy) -> None:
    for sender in ("support@example.com", "Sales+comment@EXAMPLE.com"):
        assert reasons(may_auto_answer(mail(sender=sender), policy)) == ["system-address"]
    db_only = LoopPolicy.build(
        make_config({"url": "sqlite+aiosqlite:///x.db"}), ["help@example.org"]
    )
    assert reasons(may_auto_answer(mail(sender="help@example.org"), db_only)) == ["system-address"]


def test_no_usable_recipient(policy: LoopPolicy) -> None:
    verdict = may_auto_answer(mail(sender="not an address"), policy)
    assert reasons(verdict) == ["no-recipient"]


def test_pattern_from_the_configuration() -> None:
    config = make_config(
        {"url": "sqlite+aiosqlite:///x.db"}, loop_protection={"no_auto_response_pattern": "^robot-"}
    )
    policy = LoopPolicy.build(config)
    assert not may_auto_answer(mail(sender="ROBOT-7@x.example"), policy).allowed
    assert may_auto_answer(mail(sender="noreply@x.example"), policy).allowed
    with pytest.raises(ConfigError, match="RE2"):
        parse_config({"loop_protection": {"no_auto_response_pattern": "(?=lookahead)"}})


def test_per_address_limits_in_the_configuration() -> None:
    section = {"per_address_limits": ["VIP@example.com=100", "robot@partner.example = 0"]}
    config = parse_config({"loop_protection": section}).loop_protection
    assert config.limit_for("vip@EXAMPLE.com") == 100
    assert config.limit_for("robot@partner.example") == 0
    assert config.limit_for("alice@customer.example") == 40
    env = {"PYTRS_LOOP_PROTECTION_PER_ADDRESS_LIMITS": "a@x.example=3,b@x.example=4"}
    assert parse_config({}, env).loop_protection.limit_for("b@x.example") == 4
    with pytest.raises(ConfigError, match=r"per_address_limits\[0\]: must be \"address=limit\""):
        parse_config({"loop_protection": {"per_address_limits": ["vip@example.com"]}})


# --- the daily budget -----------------------------------------------------------------------------


async def used(db: Database, address: str) -> int:
    async with db.connect() as conn:
        query = select(func.count()).select_from(ticket_loop_protection)
        return int(await conn.scalar(query.where(ticket_loop_protection.c.sent_to == address)) or 0)


async def take(db: Database, address: str, today: date = TODAY, limit: int = 40) -> bool:
    async with db.transaction() as conn:
        return await take_budget(conn, address, today, limit)


async def test_the_41st_auto_response_of_the_day_is_refused(db: Database) -> None:
    results = [await take(db, "alice@customer.example") for _ in range(41)]
    assert results == [True] * 40 + [False]
    assert await used(db, "alice@customer.example") == 40
    # Addresses are counted case-insensitively, each on its own.
    assert not await take(db, "Alice@Customer.Example")
    assert await take(db, "bob@customer.example")


async def test_the_count_restarts_on_a_new_utc_day(db: Database) -> None:
    for _ in range(3):
        assert await take(db, "alice@customer.example", limit=3)
    assert not await take(db, "alice@customer.example", limit=3)
    tomorrow = TODAY + timedelta(days=1)
    assert await take(db, "alice@customer.example", tomorrow, limit=3)
    assert await used(db, "alice@customer.example") == 1  # yesterday's rows went
    assert not await take(db, "nobody@customer.example", limit=0)  # 0: none at all


async def test_purge_removes_earlier_days_of_every_address(db: Database) -> None:
    await take(db, "a@customer.example", TODAY - timedelta(days=2))
    await take(db, "b@customer.example", TODAY - timedelta(days=1))
    await take(db, "c@customer.example", TODAY)
    async with db.transaction() as conn:
        assert await purge_loop_protection(conn, TODAY) == 2
    assert [await used(db, f"{x}@customer.example") for x in "abc"] == [0, 0, 1]


async def test_a_rolled_back_send_gives_its_budget_back(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            assert await take_budget(conn, "alice@customer.example", TODAY, 1)
            raise RuntimeError("the ticket transaction failed")
    assert await take(db, "alice@customer.example", limit=1)


async def test_clear_to_send_uses_overrides_suppressions_and_utc_days(
    db: Database, config: Config
) -> None:
    section = replace(config.loop_protection, max_auto_responses_per_address_per_day=2,
                      per_address_limits=("vip@example.com=3",))  # fmt: skip
    now = datetime(2026, 5, 24, 23, 30, tzinfo=UTC)
    async with db.transaction() as conn:
        assert [
            await clear_to_send(conn, "alice@customer.example", section, now=now) for _ in range(2)
        ] == [None, None]
        refused = await clear_to_send(conn, "alice@customer.example", section, now=now)
        assert (
            refused is not None
            and refused.reason == "daily-limit"
            and "2 auto-responses" in refused.detail
        )
        assert [await clear_to_send(conn, "VIP@example.com", section, now=now) for _ in range(4)][
            -1
        ] is not None
        # 01:30 on the 25th in UTC+2 is 23:30 on the 24th in UTC: still the same day.
        same_day = datetime(2026, 5, 25, 1, 30, tzinfo=timezone(timedelta(hours=2)))
        assert (
            await clear_to_send(conn, "alice@customer.example", section, now=same_day) is not None
        )
        next_day = now + timedelta(hours=1)
        assert await clear_to_send(conn, "alice@customer.example", section, now=next_day) is None
        await conn.execute(
            insert(address_suppression).values(
                address="bounced@customer.example", reason="550 5.1.1 no such user",
                suppressed_until=datetime(2026, 6, 1), ticket_id=None,
                created_at=datetime(2026, 5, 1),
            )
        )  # fmt: skip
        suppressed = await clear_to_send(conn, "Bounced@customer.example", section, now=now)
    assert suppressed is not None and suppressed.reason == "suppressed"
    assert "5.1.1" in suppressed.detail
    assert await used(db, "bounced@customer.example") == 0  # a suppressed address uses no budget


async def test_two_engines_racing_for_the_last_auto_response(config: Config, db: Database) -> None:
    """Two database handles (as two daemons): at the limit, only one call may pass."""
    other = create_database(config.database)
    try:
        for _ in range(4):
            assert await take(db, "alice@customer.example", limit=5)
        entered = asyncio.Event()

        async def first() -> bool:
            async with db.transaction() as conn:
                ok = await take_budget(conn, "alice@customer.example", TODAY, 5)
                entered.set()
                await asyncio.sleep(0.3)  # hold the transaction while the other one tries
                return ok

        async def second() -> bool:
            await entered.wait()
            async with other.transaction() as conn:
                return await take_budget(conn, "alice@customer.example", TODAY, 5)

        assert await asyncio.gather(first(), second()) == [True, False]
        assert await used(db, "alice@customer.example") == 5
    finally:
        await other.close()


async def test_many_concurrent_senders_on_two_engines_never_overshoot(
    config: Config, db: Database
) -> None:
    other = create_database(config.database)
    try:

        async def attempt(handle: Database) -> bool:
            async with handle.transaction() as conn:
                return await take_budget(conn, "alice@customer.example", TODAY, 7)

        results = await asyncio.gather(*(attempt(h) for _ in range(10) for h in (db, other)))
        assert sum(results) == 7
        assert await used(db, "alice@customer.example") == 7
    finally:
        await other.close()


async def test_clear_many_answers_a_batch_in_order(db: Database) -> None:
    """The batch form: one answer per entry, an address listed twice takes two of its budget,
    suppressed addresses take none, earlier days do not count."""
    section = make_config({"url": "sqlite+aiosqlite://"}, loop_protection={
        "max_auto_responses_per_address_per_day": 2, "per_address_limits": ["vip@x.example=3"],
    }).loop_protection  # fmt: skip
    now = datetime(2026, 11, 25, 12, 0)
    async with db.transaction() as conn:
        await conn.execute(insert(ticket_loop_protection).values(
            sent_to="alice@customer.example", sent_date="2026-11-24"))  # fmt: skip
        await conn.execute(insert(address_suppression).values(
            address="gone@customer.example", reason="hard bounce 5.1.1",
            suppressed_until=now + timedelta(days=1), created_at=now))  # fmt: skip
        answers = await clear_many(
            conn,
            ["Alice@customer.example", "alice@customer.example", "alice@customer.example",
             "gone@customer.example", "vip@x.example", "vip@x.example", "vip@x.example"],
            section, now=now,
        )  # fmt: skip
    reasons = [a.reason if a else None for a in answers]
    assert reasons == [None, None, "daily-limit", "suppressed", None, None, None]
    assert await used(db, "alice@customer.example") == 2


async def test_clear_many_on_two_engines_never_overshoots(config: Config, db: Database) -> None:
    other = create_database(config.database)
    section = replace(config.loop_protection, max_auto_responses_per_address_per_day=5)
    try:

        async def batch(handle: Database) -> int:
            async with handle.transaction() as conn:
                answers = await clear_many(
                    conn, ["b@customer.example", "a@customer.example"] * 2, section
                )
                await asyncio.sleep(0.05)  # hold the locks while the others try
                return sum(a is None for a in answers)

        results = await asyncio.gather(*(batch(h) for _ in range(4) for h in (db, other)))
        assert sum(results) == 10  # 5 for each of the two addresses, never more
        assert await used(db, "a@customer.example") == await used(db, "b@customer.example") == 5
    finally:
        await other.close()
