"""What a relay's replies mean for an outbox row: sent, retry later, or failed for good.

Place in the flow: the outbox sender delivers a claimed row and gets one ``Reply`` per
recipient (from ``gateway.smarthost``); ``settle`` turns them into the ``Settlement`` that
``outbox_repo.settle`` records. Pure policy, no I/O, so every rule is a table test:

* 2xx: delivered to that recipient. 5xx: refused for good (recorded on the ticket; a 5.1.x
  "no such address" also suppresses the address for ``[outbound] suppression_days``).
  4xx, or no reply at all (connection refused, lost, timed out): tried again later.
* A mail with several recipients settles per recipient: a retry goes only to those not yet
  answered for good, so nobody receives it twice, and the row is ``sent`` once every
  recipient is answered and at least one accepted it (those refused are recorded as failed),
  ``failed`` when none did.
* Retries back off exponentially (``retry_backoff_seconds`` doubling per attempt, at most
  ``max_backoff_seconds``) until ``max_retry_hours`` after the mail was queued; then what is
  still unanswered fails for good, like an MTA's maximal queue lifetime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pytrs.config import OutboundConfig
from pytrs.gateway.smarthost import Reply
from pytrs.schema.outbox_repo import (
    DELIVERED,
    FAILED,
    PENDING,
    REFUSED,
    RETRY,
    SENT,
    ClaimedMail,
    Settlement,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    backoff: timedelta
    max_backoff: timedelta
    horizon: timedelta
    suppression: timedelta

    @classmethod
    def from_config(cls, out: OutboundConfig) -> RetryPolicy:
        return cls(
            backoff=timedelta(seconds=out.retry_backoff_seconds),
            max_backoff=timedelta(seconds=out.max_backoff_seconds),
            horizon=timedelta(hours=out.max_retry_hours),
            suppression=timedelta(days=out.suppression_days),
        )

    def delay(self, attempts: int) -> timedelta:
        """Wait before the attempt after `attempts` attempts: the base, doubling, capped."""
        if self.backoff <= timedelta(0):
            return timedelta(0)
        # min() before multiplying keeps 2**n from overflowing timedelta after many attempts.
        doublings = min(max(attempts - 1, 0), 32)
        return min(self.backoff * (2**doublings), self.max_backoff)


def settle(
    mail: ClaimedMail, replies: Mapping[str, Reply], policy: RetryPolicy, now: datetime
) -> Settlement:
    """The row's new state after an attempt that got `replies` (recipient → reply)."""
    results = {r: dict(v) for r, v in mail.results.items()}
    failed: dict[str, str] = {}
    for recipient, reply in replies.items():
        status = DELIVERED if reply.accepted else REFUSED if reply.permanent else RETRY
        results[recipient] = {"status": status, "reply": str(reply)}
        if status == REFUSED:
            failed[recipient] = str(reply)
    waiting = [r for r in mail.recipients if results.get(r, {}).get("status") not in _FINAL]
    if waiting and now >= mail.created_at + policy.horizon:
        hours = policy.horizon.total_seconds() / 3600
        for recipient in waiting:
            last = results.get(recipient, {}).get("reply", "never tried")
            reason = f"gave up after {hours:g} h; last: {last}"
            results[recipient] = {"status": REFUSED, "reply": reason}
            failed[recipient] = reason
        waiting = []
    delivered = any(v.get("status") == DELIVERED for v in results.values())
    state = PENDING if waiting else SENT if delivered else FAILED
    problems = [f"{r}: {replies[r]}" for r in replies if not replies[r].accepted]
    suppress = {r: str(replies[r]) for r in failed if r in replies and replies[r].bad_address}
    keep_suppressing = policy.suppression > timedelta(0)
    return Settlement(
        mail=mail,
        state=state,
        results=results,
        next_attempt_at=now + policy.delay(mail.attempts) if waiting else now,
        last_error="; ".join(problems)[:8000] or None,
        failed=failed,
        suppress=suppress if keep_suppressing else {},
        suppress_until=now + policy.suppression if keep_suppressing else None,
    )


_FINAL = (DELIVERED, REFUSED)
