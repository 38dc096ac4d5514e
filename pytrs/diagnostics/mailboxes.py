"""Diagnostic: each mail account logs in and opens its folder; how many messages wait there.

Place in the flow: one of the concurrent checks of `pytrs doctor`, one line per
`[[mail_accounts]]` entry, the accounts checked side by side. It logs in as the fetchers do
(`gateway.imap.ImapSession`, `gateway.pop3.connect`, XOAUTH2 tokens from `gateway.oauth2`), but
read-only: the folder is EXAMINEd, nothing is fetched, moved or deleted, and the move target is
not created. An XOAUTH2 login needs the database (the refresh token lives there).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import poplib
import ssl

from pytrs.config import Config, MailAccountConfig
from pytrs.diagnostics.findings import Finding, describe, fail, ok
from pytrs.gateway import pop3
from pytrs.gateway.imap import ImapError, ImapSession
from pytrs.gateway.oauth2 import OAuth2Error, access_token
from pytrs.schema.database import StorageError, create_database, probe

CHECK = "mailbox"


async def check_mailboxes(config: Config, seconds: float) -> list[Finding]:
    if not config.mail_accounts:
        return [ok(CHECK, "no [[mail_accounts]]: mail comes by SMTP, LMTP or the pipe only")]
    checks = (
        _one(config, index, account, seconds) for index, account in enumerate(config.mail_accounts)
    )
    return list(await asyncio.gather(*checks))


async def _one(
    config: Config, index: int, configured: MailAccountConfig, seconds: float
) -> Finding:
    # The doctor's deadline on every network call (poplib's socket timeout too, so that no
    # thread outlives the command), and "keep" so that opening creates no move target.
    account = dataclasses.replace(
        configured, timeout_seconds=min(configured.timeout_seconds, seconds), mode="keep"
    )
    folder = "" if account.type.startswith("pop3") else f", {account.folder}"
    where = f"{account.name} ({account.type} {account.host}:{account.port}{folder})"
    key = f"mail_accounts[{index}]"
    try:
        async with asyncio.timeout(seconds):
            if account.type.startswith("pop3"):
                token = await _token(config, account) if account.auth == "xoauth2" else ""
                count = await asyncio.to_thread(_pop3_count, account, token)
            else:
                count = await _imap_count(config, account)
    except TimeoutError:
        return fail(
            CHECK,
            f"{where}: no answer within {seconds:g} s",
            f"check {key}.host, port and type, and the firewall",
        )
    except (ImapError, pop3.Pop3Error, OAuth2Error, StorageError, OSError) as exc:
        return fail(CHECK, f"{where}: {describe(exc)}", _advice(exc, key))
    return ok(CHECK, f"{where}: logged in, {_waiting(configured, count)}")


async def _imap_count(config: Config, account: MailAccountConfig) -> int:
    if account.auth == "xoauth2":
        session = ImapSession(account, oauth2_token=await _token(config, account))
    else:
        session = ImapSession(account, await asyncio.to_thread(account.resolve_password))
    try:
        await session.open(readonly=True)
        count = len(await session.uids())
    except BaseException:
        # Half-opened (a refused certificate, a failed login): nothing to log out of, and
        # LOGOUT would wait for an answer that never comes, past the deadline.
        _drop(session)
        raise
    await session.close()
    return count


def _drop(session: ImapSession) -> None:
    transport = session.client.protocol.transport if session.client else None
    if transport is not None and not transport.is_closing():
        transport.close()


async def _token(config: Config, account: MailAccountConfig) -> str:
    db = create_database(config.database, pool=False, create_missing=False)
    try:
        await probe(db, account.timeout_seconds)
        return await access_token(db, account)
    finally:
        await db.close()


def _pop3_count(account: MailAccountConfig, oauth2_token: str) -> int:
    """(Thread) Log in, count the maildrop, QUIT (no message is marked for deletion)."""
    client = pop3.connect(account, oauth2_token=oauth2_token)
    try:
        count, _size = client.stat()
    finally:
        with contextlib.suppress(OSError, poplib.error_proto):
            client.quit()
    return int(count)


def _waiting(account: MailAccountConfig, count: int) -> str:
    messages = f"{count} message{'s' if count != 1 else ''}"
    if account.mode == "keep":
        # Kept messages stay in the folder: the ones fetched before are among them.
        place = "on the server" if account.type.startswith("pop3") else f"in {account.folder}"
        return f"{messages} {place} (mode keep: those fetched before stay there)"
    return f"{messages} waiting"


def _advice(exc: BaseException, key: str) -> str:
    text = str(exc)
    if isinstance(exc, OAuth2Error):
        return f"check {key}.oauth2_token_url, oauth2_client_id and the client secret and token"
    if isinstance(exc, StorageError):
        return "XOAUTH2 keeps its tokens in the database: see the database line"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"set {key}.ca_file to the CA of the server's certificate"
    if isinstance(exc, ssl.SSLError):
        return f"check {key}.type (imaps/pop3s: TLS from the start; +starttls: STARTTLS) and port"
    if "SELECT" in text or "EXAMINE" in text:
        return f"check {key}.folder: the account has no such folder"
    if isinstance(exc, ImapError | pop3.Pop3Error) or "login" in text.lower():
        return f"check {key}.user and password_file (or password); the server refused them"
    return f"check {key}.host, port and type, and that the server runs"
