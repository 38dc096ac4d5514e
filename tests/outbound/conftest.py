"""Fixtures of the outbox tests: the recording relay, an outbound configuration, tickets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from pytrs.config import Config
from pytrs.responders.message import Composer, Draft, Parent
from pytrs.schema import outbox_repo
from pytrs.schema.database import Database, utcnow
from pytrs.schema.tables import article, outbox, ticket
from pytrs.vocabulary import znuny

from ..conftest import make_config
from ..servers.relay import RecordingRelay, write_ed25519_key, write_rsa_key

LOOP_SECRET = "0123456789abcdef-test-secret"


def outbound_config(database: dict[str, Any], relay: RecordingRelay, **outbound: Any) -> Config:
    """A configuration whose outbox sender talks to `relay`, with fast retries."""
    settings = {
        "relay": relay.address, "loop_secret": LOOP_SECRET, "timeout_seconds": 5.0,
        "retry_backoff_seconds": 0.05, "max_backoff_seconds": 0.2, "lease_seconds": 20.0,
        "poll_interval_seconds": 0.05, "helo_name": "pytrs.test", **outbound,
    }  # fmt: skip
    return make_config(database, outbound=settings)


@pytest.fixture
def sender_config(database_settings: dict[str, Any], relay: RecordingRelay) -> Config:
    return outbound_config(database_settings, relay)


@pytest.fixture(scope="session")
def dkim_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One RSA-2048 and one ed25519 key, made once per session (RSA keys take a while)."""
    directory = tmp_path_factory.mktemp("dkim")
    return {
        "rsa": write_rsa_key(directory / "rsa.pem"),
        "ed25519": write_ed25519_key(directory / "ed25519.pem"),
    }


async def make_ticket(db: Database, tn: str = "2026112510000017") -> tuple[int, int]:
    """A ticket in queue Raw with one customer article; (ticket id, article id)."""
    now = utcnow()
    audit = {"create_time": now, "change_time": now}
    async with db.transaction() as conn:
        ticket_id = (
            await conn.execute(
                ticket.insert()
                .values(
                    tn=tn, title="Printer on fire", queue_id=2, ticket_lock_id=znuny.LOCK_UNLOCK,
                    type_id=1, user_id=znuny.USER_ROOT, responsible_user_id=znuny.USER_ROOT,
                    ticket_priority_id=znuny.PRIORITY_NORMAL, ticket_state_id=znuny.STATE_NEW,
                    **audit,
                )
                .returning(ticket.c.id)
            )
        ).scalar_one()  # fmt: skip
        article_id = (
            await conn.execute(
                article.insert()
                .values(
                    ticket_id=ticket_id, article_sender_type_id=znuny.SENDER_SYSTEM,
                    communication_channel_id=znuny.CHANNEL_EMAIL, **audit,
                )
                .returning(article.c.id)
            )
        ).scalar_one()  # fmt: skip
    return ticket_id, article_id


def draft(**overrides: Any) -> Draft:
    values: dict[str, Any] = {
        "sender": "Example Support <support@example.com>",
        "to": ["Alice Customer <alice@customer.example>"],
        "subject": "Printer on fire",
        "text": "We received your message and will answer soon.\n",
        "tn": "2026112510000017",
        "answering": Parent("<first@customer.example>", "<root@customer.example>"),
        "automatic": "auto-replied",
        **overrides,
    }
    return Draft(**values)


async def enqueue(
    db: Database, config: Config, count: int = 1, *, ticket_ids: tuple[int, int] | None = None,
    **overrides: Any,
) -> list[int]:  # fmt: skip
    """Compose `count` mails from `draft(**overrides)` and enqueue them in one transaction."""
    composer = Composer.from_config(config)
    ticket_id, article_id = ticket_ids or (None, None)
    async with db.transaction() as conn:
        return [
            await outbox_repo.enqueue(
                conn, composer.compose(draft(**overrides)), ticket_id=ticket_id,
                article_id=article_id, kind="auto-reply",
            )
            for _ in range(count)
        ]  # fmt: skip


async def rows(db: Database) -> list[Any]:
    async with db.connect() as conn:
        return list(await conn.execute(select(outbox).order_by(outbox.c.id)))


async def states(db: Database) -> dict[str, int]:
    async with db.connect() as conn:
        found = await conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
        return {state: int(n) for state, n in found}
