"""`pytrs outbox flush`: deferred mail sent now, once the relay is fixed.

Place in the flow: the rows waiting for a retry (all, or `--ids`) are made due at once
(`outbox_admin.make_due`), then sent from this process by the daemon's own sender
(`outbound.sender.OutboxSender`, limited to these rows) with the configured relay and DKIM
keys. Rows are claimed with a lease, exactly as the daemon claims them, so a daemon running
beside the command and the command never send one row twice: whichever claims a row sends
it, and the command waits a moment for the rows a daemon took before it reports. `--no-send`
only makes the rows due; a running daemon sends them within `[outbound] poll_interval_seconds`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Collection
from typing import Any

from pytrs.commands.database import opened
from pytrs.config import Config
from pytrs.outbound.dkim import DkimSigner
from pytrs.outbound.sender import OutboxSender
from pytrs.schema import outbox_admin
from pytrs.schema.database import Database, utcnow
from pytrs.schema.outbox_repo import FAILED, PENDING, RETRY, SENDING, SENT
from pytrs.vocabulary.times import when

# How often the rows another sender holds are looked at while the command waits for them.
POLL_SECONDS = 0.2
WORDS = {SENT: "sent", PENDING: "still deferred", FAILED: "failed", SENDING: "still being sent"}


async def flush(config: Config, ids: Collection[int] | None, *, send: bool, as_json: bool) -> int:
    """Make the deferred rows due and (with `send`) send them; returns the exit code."""
    # Read before anything changes: a key that cannot be used stops the command (exit 2).
    signer = DkimSigner.from_config(config.dkim_keys) if send else None
    async with opened(config) as db:
        pending, others = await outbox_admin.make_due(db, ids, utcnow())
        if signer is not None and pending:
            await _send(config, db, signer, pending)
        async with db.connect() as conn:
            rows = await outbox_admin.outcomes(conn, pending)
    _print_others(others)
    if not send:
        return _report_due(rows, as_json) or (1 if others else 0)
    counts = {state: sum(r["state"] == state for r in rows) for state in WORDS}
    if as_json:
        print(json.dumps(_document(rows, counts, others), default=str, indent=2))
    else:
        for row in rows:
            print(_line(row))
        print(", ".join(f"{WORDS[s]} {counts[s]}" for s in WORDS if counts[s] or s != SENDING))
    return 0 if counts[SENT] == len(rows) and not others else 1


async def _send(config: Config, db: Database, signer: DkimSigner, ids: list[int]) -> None:
    sender = OutboxSender(config, db, signer, name="outbox-flush", only=ids)
    try:
        # Bounded: with `retry_backoff_seconds = 0` a deferred row is due again at once.
        for _ in range(len(ids) + 1):
            if not await sender.run_once():
                break
    finally:
        await sender.close()
    # Rows a running daemon claimed first: it sends them; report what became of them.
    loop = asyncio.get_running_loop()
    end = loop.time() + 2 * config.outbound.timeout_seconds
    while loop.time() < end:
        async with db.connect() as conn:
            rows = await outbox_admin.outcomes(conn, ids)
        if not any(r["state"] == SENDING for r in rows):
            return
        await asyncio.sleep(POLL_SECONDS)  # another process: no event to wait for


def _line(row: dict[str, Any]) -> str:
    head = f"outbox {row['id']} {row['message_id']}: {WORDS.get(row['state'], row['state'])}"
    if row["state"] == PENDING:
        return f"{head} until {when(row['next_attempt_at'])} UTC: {_answers(row)}"
    if row["state"] == FAILED:
        return f"{head}: {_first_line(row['last_error'])}"
    if row["state"] == SENDING:
        return f"{head} by {row['claimed_by']}"
    return head


def _answers(row: dict[str, Any]) -> str:
    """The relay's last answer to each recipient still waiting."""
    waiting = {a: r.get("reply", "") for a, r in row["results"].items() if r.get("status") == RETRY}
    return "; ".join(f"{a}: {reply}" for a, reply in waiting.items()) or _first_line(
        row["last_error"]
    )


def _first_line(text: str | None) -> str:
    return (str(text or "").strip().splitlines() or ["no answer recorded"])[0][:300]


def _print_others(others: dict[int, str]) -> None:
    for row_id, state in sorted(others.items()):
        why = f"not deferred (it is {state})" if state else "no such row"
        print(f"outbox {row_id}: {why}", file=sys.stderr)


def _report_due(rows: list[dict[str, Any]], as_json: bool) -> int:
    if as_json:
        print(json.dumps({"due": [r["id"] for r in rows if r["state"] == PENDING]}))
    else:
        print(
            f"{len(rows)} outbox row(s) due now; a running daemon sends them within "
            "[outbound] poll_interval_seconds"
        )
    return 0


def _document(
    rows: list[dict[str, Any]], counts: dict[str, int], others: dict[int, str]
) -> dict[str, Any]:
    return {
        "rows": [
            {
                "id": r["id"], "message_id": r["message_id"], "state": r["state"],
                "next_attempt_at": r["next_attempt_at"] if r["state"] == PENDING else None,
                "answers": {a: v.get("reply", "") for a, v in r["results"].items()},
            }
            for r in rows
        ],
        "sent": counts[SENT], "deferred": counts[PENDING], "failed": counts[FAILED],
        "sending": counts[SENDING],
        "not_flushed": {str(k): v or "no such row" for k, v in sorted(others.items())},
    }  # fmt: skip
