"""SASL XOAUTH2 against a real Dovecot whose `oauth2` passdb asks a local introspection endpoint;
the same local server plays the provider's token endpoint, rotating refresh tokens. IMAP
(AUTHENTICATE) and POP3 (AUTH, RFC 5034) both log in this way."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import secrets
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

import pytest
from sqlalchemy import text

from pytrs.config import MailAccountConfig
from pytrs.gateway.imap import ImapError, ImapFetcher, ImapSession
from pytrs.gateway.oauth2 import OAuth2Error, access_token
from pytrs.gateway.pop3 import AUTH_LINE_OCTETS, Pop3Error, Pop3Fetcher, connect

from .dovecot import DovecotServer
from .helpers import inbox_ids, put


class Provider(BaseHTTPRequestHandler):
    """Token endpoint (refresh grant, rotating refresh tokens) and introspection endpoint."""

    refresh_tokens: ClassVar[dict[str, str]] = {}  # valid refresh token → user
    access_tokens: ClassVar[dict[str, str]] = {}  # valid access token → user
    counter = itertools.count(1)
    refuse_logins = False

    def do_POST(self) -> None:
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"]))
                                               .decode()).items()}  # fmt: skip
        if self.path == "/token":
            user = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if user is None or form.get("client_id") != "pytrs-test":
                self._answer(400, {"error": "invalid_grant", "error_description": "revoked"})
                return
            n = next(self.counter)
            access, refresh = f"access-{n}", f"refresh-{n}"
            self.access_tokens[access] = user
            self.refresh_tokens[refresh] = user
            self._answer(200, {"access_token": access, "refresh_token": refresh,
                               "expires_in": 3600, "token_type": "Bearer"})  # fmt: skip
        else:  # introspection, asked by Dovecot
            user = None if Provider.refuse_logins else self.access_tokens.get(form.get("token", ""))
            self._answer(200, {"active": True, "username": user} if user else {"active": False})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def oauth_dovecot(
    provider: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DovecotServer]:
    server = DovecotServer.start(
        tmp_path_factory.mktemp("dovecot-oauth"), oauth2_introspection_url=f"{provider}/introspect"
    )
    try:
        yield server
    finally:
        server.stop()


def xoauth2_account(
    server: DovecotServer, provider: str, user: str, tmp_path: Path
) -> MailAccountConfig:
    first = f"refresh-first-{secrets.token_hex(4)}"
    Provider.refresh_tokens[first] = user
    token_file = tmp_path / "refresh-token"
    token_file.write_text(first + "\n")
    return MailAccountConfig(
        type="imap", host=server.host, port=server.imap_port, user=user, mode="keep",
        name=f"oauth-{user}", auth="xoauth2", oauth2_token_url=f"{provider}/token",
        oauth2_client_id="pytrs-test", oauth2_refresh_token_file=str(token_file),
        timeout_seconds=20.0,
    )  # fmt: skip


async def sync(acct: MailAccountConfig, db: Any) -> int:
    session = ImapSession(acct, oauth2_token=await access_token(db, acct))
    try:
        await session.open(readonly=True)
        return (await ImapFetcher(acct, db, default_max_size=10**8).sync(session)).fetched
    finally:
        await session.close()


async def stored_refresh_token(db: Any, account: str) -> str:
    async with db.connect() as conn:
        query = text("SELECT refresh_token FROM mailbox_oauth2_token WHERE account = :a")
        return str((await conn.execute(query, {"a": account})).scalar_one())


async def test_xoauth2_login_and_refresh_token_rotation(
    oauth_dovecot: DovecotServer, provider: str, db: Any, tmp_path: Path
) -> None:
    user = f"o{secrets.token_hex(4)}"
    oauth_dovecot.add_user(user, "unused-password")
    acct = xoauth2_account(oauth_dovecot, provider, user, tmp_path)
    ids = put(oauth_dovecot, (user, "unused-password"), 2)
    assert await sync(acct, db) == 2
    rotated = await stored_refresh_token(db, acct.name)
    assert rotated.startswith("refresh-") and "first" not in rotated
    # The access token expires: the next login refreshes with the rotated token (the first
    # one is revoked by now, so the file is no longer usable and must not be needed).
    async with db.transaction() as conn:
        await conn.execute(
            text("UPDATE mailbox_oauth2_token SET expires_at = :t"), {"t": datetime(2000, 1, 1)}
        )
    more = put(oauth_dovecot, (user, "unused-password"), 1)
    assert await sync(acct, db) == 1
    assert await stored_refresh_token(db, acct.name) != rotated
    assert sorted(await inbox_ids(db)) == sorted(ids + more)


async def test_rotated_token_is_saved_before_it_is_used(
    oauth_dovecot: DovecotServer, provider: str, db: Any, tmp_path: Path
) -> None:
    user = f"o{secrets.token_hex(4)}"
    oauth_dovecot.add_user(user, "unused-password")
    acct = xoauth2_account(oauth_dovecot, provider, user, tmp_path)
    Provider.refuse_logins = True  # the login after the refresh fails
    try:
        with pytest.raises(ImapError, match="XOAUTH2"):
            await sync(acct, db)
    finally:
        Provider.refuse_logins = False
    saved = await stored_refresh_token(db, acct.name)
    assert saved in Provider.refresh_tokens  # the live, rotated one; the file's is revoked
    assert await sync(acct, db) == 0  # and it works once logins do


async def test_revoked_refresh_token_is_a_clear_error(
    oauth_dovecot: DovecotServer, provider: str, db: Any, tmp_path: Path
) -> None:
    acct = xoauth2_account(oauth_dovecot, provider, "nobody", tmp_path)
    Provider.refresh_tokens.clear()
    with pytest.raises(OAuth2Error, match="invalid_grant"):
        await access_token(db, acct)


def pop3_account(imap: MailAccountConfig, server: DovecotServer) -> MailAccountConfig:
    return dataclasses.replace(imap, type="pop3", port=server.pop3_port, name=f"pop-{imap.user}")


async def test_pop3_xoauth2_fetches_and_refreshes(
    oauth_dovecot: DovecotServer, provider: str, db: Any, tmp_path: Path
) -> None:
    user = f"p{secrets.token_hex(4)}"
    oauth_dovecot.add_user(user, "unused-password")
    acct = pop3_account(xoauth2_account(oauth_dovecot, provider, user, tmp_path), oauth_dovecot)
    ids = put(oauth_dovecot, (user, "unused-password"), 2)
    fetcher = Pop3Fetcher(acct, db, default_max_size=10**8)
    assert (await fetcher.sync()).fetched == 2
    rotated = await stored_refresh_token(db, acct.name)
    assert rotated.startswith("refresh-") and "first" not in rotated
    async with db.transaction() as conn:
        await conn.execute(
            text("UPDATE mailbox_oauth2_token SET expires_at = :t"), {"t": datetime(2000, 1, 1)}
        )
    more = put(oauth_dovecot, (user, "unused-password"), 1)
    assert (await fetcher.sync()).fetched == 1  # logged in with a refreshed token
    assert await stored_refresh_token(db, acct.name) != rotated
    assert sorted(await inbox_ids(db)) == sorted(ids + more)


async def test_pop3_xoauth2_long_token_and_refusal(
    oauth_dovecot: DovecotServer, provider: str, tmp_path: Path
) -> None:
    user = f"p{secrets.token_hex(4)}"
    oauth_dovecot.add_user(user, "unused-password")
    acct = pop3_account(xoauth2_account(oauth_dovecot, provider, user, tmp_path), oauth_dovecot)
    put(oauth_dovecot, (user, "unused-password"), 1)
    # Real access tokens are longer than an AUTH line may be: sent after the "+ " instead.
    long = f"long-{secrets.token_hex(200)}"
    assert len(long) > AUTH_LINE_OCTETS
    Provider.access_tokens[long] = user
    client = await asyncio.to_thread(connect, acct, oauth2_token=long)
    try:
        assert client.stat()[0] == 1
    finally:
        await asyncio.to_thread(client.quit)
    # A refused token: the server's reason (its JSON challenge) in one line, then -ERR.
    for token in ("not-a-token", f"revoked-{secrets.token_hex(200)}"):
        with pytest.raises(Pop3Error, match=r"^XOAUTH2 failed: \{.*\"status\""):
            await asyncio.to_thread(connect, acct, oauth2_token=token)
