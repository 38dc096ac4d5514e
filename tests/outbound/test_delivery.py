"""Delivery policy (pure): what replies mean for a row, backoff, horizon, hard bounces."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from pytrs.gateway.smarthost import Reply, no_reply
from pytrs.outbound.delivery import RetryPolicy, settle
from pytrs.schema.outbox_repo import ClaimedMail

NOW = datetime(2026, 11, 25, 12, 0)
POLICY = RetryPolicy(
    backoff=timedelta(seconds=60),
    max_backoff=timedelta(hours=1),
    horizon=timedelta(hours=48),
    suppression=timedelta(days=30),
)


def mail(
    *recipients: str, attempts: int = 1, age: timedelta = timedelta(0), **results: str
) -> ClaimedMail:
    return ClaimedMail(
        id=1, ticket_id=None, article_id=None, kind="mail", envelope_from="desk@example.com",
        recipients=recipients or ("a@x.example",),
        results={_address(key): {"status": s, "reply": ""} for key, s in results.items()},
        message_id="<m@example.com>", raw=b"x", attempts=attempts, created_at=NOW - age,
        claim_token="t",
    )  # fmt: skip


def _address(key: str) -> str:
    return key.replace("_", "@") + ".example"  # a_x → a@x.example


@pytest.mark.parametrize(
    ("attempts", "seconds"), [(1, 60), (2, 120), (3, 240), (6, 1920), (7, 3600), (500, 3600)]
)
def test_backoff_doubles_up_to_the_cap(attempts: int, seconds: int) -> None:
    assert POLICY.delay(attempts) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("reply", "bad"),
    [
        (Reply(550, "5.1.1 <a@x> user unknown"), True),
        (Reply(550, "5.1.10 null MX"), True),
        (Reply(550, "5.7.1 spam"), False),
        (Reply(550, "user unknown"), False),  # without an enhanced code we do not guess
        (Reply(450, "4.1.1 try later"), False),
        (Reply(552, "5.2.2 mailbox full"), False),
    ],
)
def test_only_5_1_x_refusals_are_hard_bounces(reply: Reply, bad: bool) -> None:
    assert reply.bad_address is bad


def test_all_accepted_is_sent() -> None:
    s = settle(mail("a@x.example", "b@x.example"), {
        "a@x.example": Reply(250, "ok"), "b@x.example": Reply(250, "ok"),
    }, POLICY, NOW)  # fmt: skip
    assert (s.state, s.failed, s.last_error) == ("sent", {}, None)


def test_a_temporary_refusal_is_retried_with_backoff() -> None:
    s = settle(mail(attempts=3), {"a@x.example": Reply(451, "4.3.0 later")}, POLICY, NOW)
    assert s.state == "pending" and s.next_attempt_at == NOW + timedelta(seconds=240)
    assert s.results["a@x.example"] == {"status": "retry", "reply": "451 4.3.0 later"}
    assert s.last_error == "a@x.example: 451 4.3.0 later"


def test_no_reply_is_temporary() -> None:
    s = settle(mail(), {"a@x.example": no_reply("relay unreachable: refused")}, POLICY, NOW)
    assert (
        s.state == "pending" and s.results["a@x.example"]["reply"] == "relay unreachable: refused"
    )


def test_partial_outcomes() -> None:
    replies = {
        "a@x.example": Reply(250, "ok"),
        "b@x.example": Reply(550, "5.1.1 unknown"),
        "c@x.example": Reply(452, "4.2.2 full"),
    }
    s = settle(mail("a@x.example", "b@x.example", "c@x.example"), replies, POLICY, NOW)
    assert s.state == "pending"  # c is still to be tried
    assert s.failed == {"b@x.example": "550 5.1.1 unknown"}
    assert s.suppress == {"b@x.example": "550 5.1.1 unknown"}
    assert s.suppress_until == NOW + timedelta(days=30)
    retry = mail("a@x.example", "b@x.example", "c@x.example", attempts=2, a_x="sent", b_x="failed")
    assert retry.pending == ("c@x.example",)
    done = settle(retry, {"c@x.example": Reply(250, "ok")}, POLICY, NOW)
    assert done.state == "sent" and done.failed == {}


def test_nobody_accepted_is_failed() -> None:
    s = settle(mail(), {"a@x.example": Reply(554, "5.7.1 no")}, POLICY, NOW)
    assert s.state == "failed" and s.suppress == {}


def test_past_the_horizon_what_is_unanswered_fails() -> None:
    old = mail("a@x.example", "b@x.example", age=timedelta(hours=49), a_x="sent")
    s = settle(old, {"b@x.example": Reply(451, "4.4.1 no answer")}, POLICY, NOW)
    assert s.state == "sent"  # a got it; b failed for good
    assert s.failed == {"b@x.example": "gave up after 48 h; last: 451 4.4.1 no answer"}


def test_suppression_can_be_switched_off() -> None:
    policy = RetryPolicy(POLICY.backoff, POLICY.max_backoff, POLICY.horizon, timedelta(0))
    s = settle(mail(), {"a@x.example": Reply(550, "5.1.1 unknown")}, policy, NOW)
    assert s.suppress == {} and s.suppress_until is None
