"""The dry run behind `pytrs filters test`: the worker's routing set-up, read-only, no DNS.

Mail from an agent's address is checked as the worker checks it, except DKIM: a real DNS
server in the test's loop serves the agent's key and must receive no query from a dry run
(the worker's own authenticator asks it, which shows the key is there to be found).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from pytrs.authentication.authenticity import DKIM_UNCHECKED, AgentAuthenticator
from pytrs.config import Config
from pytrs.parsers import parse_mail
from pytrs.postmaster.dryrun import UNKNOWN, describe, dry_run
from pytrs.postmaster.filter_rules import replace_rules
from pytrs.postmaster.filters import MatchRow, Rule, SetRow
from pytrs.provisioning import provision
from pytrs.schema.database import Database
from pytrs.schema.tables import inbox, ticket

from ..conftest import make_config
from ..helpers import count
from ..servers.dns_zone import DnsZone

AGENT = "jdoe@example.com"


@pytest.fixture
async def signing_zone() -> AsyncIterator[tuple[DnsZone, bytes]]:
    """A DNS zone publishing the ed25519 key "s1" of example.com; yields it and the key."""
    key = ed25519.Ed25519PrivateKey.generate()
    raw = serialization.Encoding.Raw
    seed = key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = base64.b64encode(key.public_key().public_bytes(raw, serialization.PublicFormat.Raw))
    record = f"v=DKIM1; k=ed25519; p={public.decode()}"
    zone = await DnsZone({"s1._domainkey.example.com": [record]}).start()
    try:
        yield zone, base64.b64encode(seed)
    finally:
        await zone.stop()


def agent_config(database: dict[str, Any], zone: DnsZone) -> Config:
    return make_config(
        database,
        agents=[{"login": "jdoe", "email": AGENT, "queues": ["Support"]}],
        authentication={"dns_resolver": zone.address, "trusted_authserv_ids": ["mx.example.com"]},
    )


def agent_mail(*top: str) -> bytes:
    lines = [
        *top,
        f"From: Jane Doe <{AGENT}>",
        "To: support@example.com",
        "Subject: printer on fire",
        "Message-ID: <answer.1@example.com>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    return ("\r\n".join(lines) + "\r\n\r\nIt works again.\r\n").encode()


async def test_agent_mail_is_checked_without_dns(
    database_settings: dict[str, Any], db: Database, signing_zone: tuple[DnsZone, bytes]
) -> None:
    zone, seed = signing_zone
    config = agent_config(database_settings, zone)
    await provision(db, config)
    raw = agent_mail()
    raw = dkim.sign(raw, b"s1", b"example.com", seed, signature_algorithm=b"ed25519-sha256") + raw

    run = await dry_run(config, db, raw, recipient="support@example.com")
    assert run.agent is not None and not run.agent.authenticated
    assert run.agent.detail.endswith(DKIM_UNCHECKED)
    assert zone.queries == []
    lines = describe(run)
    assert f"agent mail: not authenticated: {run.agent.detail}" in lines
    assert lines[-len(UNKNOWN) - 1 :] == ["not known in a dry run:", *(f"  {u}" for u in UNKNOWN)]

    # The worker's authenticator finds the same signature good, through the zone.
    verdict = await AgentAuthenticator(config).verify(
        raw, parse_mail(raw), agent_address=AGENT, agent_login="jdoe", ticket_tn="",
        trusted_source=False, recipients=["support@example.com"],
    )  # fmt: skip
    assert verdict.authenticated and zone.queries == [("udp", "s1._domainkey.example.com")]


async def test_what_needs_no_dns_still_authenticates(
    database_settings: dict[str, Any], db: Database, signing_zone: tuple[DnsZone, bytes]
) -> None:
    zone, _seed = signing_zone
    config = agent_config(database_settings, zone)
    await provision(db, config)
    raw = agent_mail("Authentication-Results: mx.example.com; dkim=pass header.d=example.com")
    run = await dry_run(config, db, raw, trusted=True, recipient="support@example.com")
    assert run.agent is not None and run.agent.authenticated
    lines = describe(run)
    shown = "agent mail: authenticated: authentication-results mx.example.com"
    assert any(line.startswith(shown) for line in lines)
    assert zone.queries == []


async def test_rules_are_explained_on_the_headers_they_saw(
    database_settings: dict[str, Any], db: Database
) -> None:
    """A rule matching a header pytrs detected (here X-PyTRS-AttachmentExists) is explained
    as matched, as the worker applies it, and the run writes nothing."""
    config = make_config(database_settings)
    await provision(db, config)
    await replace_rules(db, [
        Rule("010-plain", (MatchRow("X-PyTRS-AttachmentExists", "^no$"),),
             (SetRow("X-PyTRS-Queue", "Sales"),)),
    ])  # fmt: skip
    run = await dry_run(config, db, agent_mail().replace(AGENT.encode(), b"a@customer.example"))
    assert run.control["X-PyTRS-Queue"] == "Sales"
    assert run.rules.explanations[0].startswith("010-plain: matched")
    assert run.decision is not None and run.decision.queue == "Sales"
    assert (await count(db, ticket), await count(db, inbox)) == (0, 0)
