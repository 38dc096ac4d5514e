"""The counters of the stages the daemon test does not reach: mail accounts (a real POP3
server and one that is down), DKIM signing and verifying against a real DNS zone. Each check
compares the exposition before and after, through `Exposition` as `/metrics` renders it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytrs.authentication.dkim_verify import DkimVerifier
from pytrs.config import DkimKeyConfig
from pytrs.gateway.fetchers import MailboxFetchers
from pytrs.metrics.exposition import Exposition
from pytrs.outbound.dkim import DkimSigner, load_key
from pytrs.schema.database import Database

from ..conftest import make_config, wait_until
from ..helpers import inbox_ids, make_mail
from ..pop3_server import pop3_server
from ..servers.dns_zone import DnsZone
from ..servers.relay import write_rsa_key
from .conftest import Scrape


async def _scrape(db: Database, accounts: tuple[str, ...] = ()) -> Scrape:
    exposition = Exposition(db, accounts)
    await exposition.refresh()
    return Scrape(exposition.render().decode())


@pytest.fixture
def pop3_port() -> Iterator[int]:
    mails = [(b"u1", make_mail(subject="one")), (b"u2", make_mail(subject="two"))]
    with pop3_server([(uidl, raw.replace(b"\n", b"\r\n")) for uidl, raw in mails]) as port:
        yield port


async def test_fetch_per_account(
    database_settings: dict[str, Any], db: Database, pop3_port: int
) -> None:
    def account(name: str, port: int) -> dict[str, Any]:
        return {
            "type": "pop3", "host": "127.0.0.1", "port": port, "user": "u", "password": "p",
            "mode": "keep", "name": name, "poll_interval_seconds": 30, "timeout_seconds": 5,
        }  # fmt: skip

    # Port 1 is closed: every session of "down" fails at connect.
    accounts = [account("up", pop3_port), account("down", 1)]
    config = make_config(database_settings, mail_accounts=accounts)
    names = ("up", "down")
    before = await _scrape(db, names)
    assert before.value("pytrs_fetch_last_success_age_seconds", account="up") == -1
    fetchers = MailboxFetchers(config, db)
    task = asyncio.create_task(fetchers.run())

    async def fetched_and_failed() -> bool:
        moved = await _scrape(db, names) - before
        return sum((await inbox_ids(db)).values()) == 2 and moved("pytrs_fetch_errors_total",
                                                                  account="down") == 1  # fmt: skip

    try:
        await wait_until(fetched_and_failed, within=15)
    finally:
        fetchers.request_stop()
        await asyncio.wait_for(task, 15)
    after = await _scrape(db, names)
    moved = after - before
    assert moved("pytrs_mail_accepted_total", source="pop3", listener="up") == 2
    assert moved("pytrs_fetch_errors_total", account="down") == 1
    assert moved("pytrs_fetch_errors_total", account="up") == 0
    assert 0 <= after.value("pytrs_fetch_last_success_age_seconds", account="up") < 60
    assert after.value("pytrs_fetch_last_success_age_seconds", account="down") == -1
    # The fetched mail waits in the inbox: a depth from the database.
    assert after.value("pytrs_inbox_messages", state="pending") == 2


async def test_dkim_signing_and_verifying(db: Database, tmp_path: Path) -> None:
    entry = DkimKeyConfig("agents.example", "s1", str(write_rsa_key(tmp_path / "s1.pem")))
    signer = DkimSigner([load_key(entry)])
    zone = await DnsZone({"s1._domainkey.agents.example": [load_key(entry).dns_record()]}).start()
    try:
        before = await _scrape(db)
        agent_mail = make_mail(sender="Jane <jane@agents.example>")
        signed = signer.sign(agent_mail)
        assert signer.sign(make_mail(sender="x@elsewhere.example")).startswith(b"From")
        verifier = DkimVerifier(zone.address, timeout=5.0)
        results = [
            await verifier.check(signed, "agents.example"),
            await verifier.check(signed.replace(b"on fire", b"fine"), "agents.example"),
            await verifier.check(agent_mail, "agents.example"),
        ]
        assert [r.outcome for r in results] == ["pass", "fail", "none"], results
        moved = await _scrape(db) - before
    finally:
        await zone.stop()
    assert moved("pytrs_dkim_signatures_total", result="signed") == 1
    assert moved("pytrs_dkim_signatures_total", result="no-key") == 1
    for outcome in ("pass", "fail", "none"):
        assert moved("pytrs_dkim_verifications_total", result=outcome) == 1
    assert moved.total("pytrs_dkim_verifications_total") == 3
