"""A real Postfix delivers to pytrs over LMTP with STARTTLS, to a listener that requires it.

Postfix's LMTP client is told to encrypt (`lmtp_tls_security_level = encrypt`: it refuses to
deliver in clear); pytrs's listener has `require_tls`, so the mail can only arrive through
STARTTLS. The maillog shows the TLS session and pytrs's `250 … queued as ID`.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pytrs.schema.tables import inbox

from ..conftest import make_config
from ..helpers import make_mail
from ..postfix import PostfixServer
from .certs import make_pair

# A transport of its own, so that the TLS settings apply to it alone; tlsmgr (not among the
# harness's services) keeps the TLS session cache and entropy every TLS client needs.
SERVICE = """\
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
pytrs-tls unix  -       -       n       -       -       lmtp
  -o lmtp_tls_security_level=encrypt
  -o lmtp_tls_loglevel=1
"""


@pytest.fixture
def postfix_present() -> None:
    if shutil.which("postfix", path="/usr/sbin:/usr/local/sbin:/usr/bin") is None:
        pytest.skip("postfix is not installed (.ci/run installs it)")


async def test_postfix_delivers_over_lmtp_with_starttls(
    postfix_present: None, database_settings: dict[str, Any], tmp_path: Path, start_daemon: Any
) -> None:
    pair = make_pair(tmp_path, "lmtp")
    smtp = {"tls_cert_file": str(pair.cert), "tls_key_file": str(pair.key), "require_tls": True}
    daemon = await start_daemon(make_config(database_settings, smtp=smtp))
    transport = f"pytrs-tls:inet:127.0.0.1:{daemon.port('lmtp')}"
    postfix = await asyncio.to_thread(
        PostfixServer.start, domain="example.com", transport=transport, services=SERVICE
    )
    try:
        await asyncio.to_thread(
            postfix.send,
            make_mail(subject="over lmtp with tls"),
            "alice@customer.example",
            ["support@example.com"],
        )
        outcome = await asyncio.to_thread(postfix.outcome, "support@example.com")
        log = postfix.maillog.read_text(errors="replace")
    finally:
        await asyncio.to_thread(postfix.stop)
    assert outcome.status == "sent", outcome
    assert "TLS connection established to 127.0.0.1" in log, log
    assert daemon.daemon.db is not None
    async with daemon.daemon.db.connect() as conn:
        [row_id] = (await conn.execute(select(inbox.c.id))).scalars().all()
    assert outcome.reason.endswith(f"queued as {row_id}"), outcome
