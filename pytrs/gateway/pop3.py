"""POP3 fetching with UIDL deduplication and delete-after-commit (stdlib poplib in a thread).

POP3 has no cursor, only per-message UIDLs. A pass lists UIDLs, fetches (RETR) those not yet
remembered, commits each batch to the inbox together with its UIDLs, and only then marks them
for deletion (mode "delete"); the server deletes at QUIT. A crash before QUIT deletes nothing on
the server, and the next pass finds those UIDLs remembered: it deletes them without importing
them again. Every network call runs in a worker thread under the account's socket timeout, so a
hung server cannot block the event loop.

An account with `auth = "xoauth2"` logs in with SASL XOAUTH2 (RFC 5034 `AUTH`, as Gmail and
Exchange Online offer it), its access token from `gateway.oauth2` as for IMAP.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import poplib

from pytrs.config import MailAccountConfig
from pytrs.gateway.imap import AccountFetcher, SyncResult, tls_context
from pytrs.gateway.oauth2 import access_token
from pytrs.schema import mailbox_repo, storable
from pytrs.schema.tables import pop3_seen
from pytrs.vocabulary.inbox import InboxItem

log = logging.getLogger(__name__)

# poplib refuses lines longer than this by default (2048); real mail has longer ones.
poplib._MAXLINE = 1024 * 1024  # type: ignore[attr-defined]
# RFC 5034 §4: an AUTH command with its initial response fits in 255 octets; a longer
# response (most real access tokens) is sent on a line of its own after the server's "+ ".
AUTH_LINE_OCTETS = 255


class Pop3Error(ConnectionError):
    """The POP3 server refused a command."""


class Pop3Fetcher(AccountFetcher):
    """One pass over a POP3 maildrop; `sync()` connects, fetches, acts and quits."""

    async def sync(self) -> SyncResult:
        token = ""
        if self.account.auth == "xoauth2":
            token = await access_token(self.db, self.account)
        client = await asyncio.to_thread(connect, self.account, oauth2_token=token)
        try:
            result = await self._pass(client)
            await asyncio.to_thread(client.quit)  # deletions take effect here
            return result
        except BaseException:
            # Close without QUIT: the server then forgets the deletions of this session.
            await asyncio.to_thread(client.close)
            raise

    async def _pass(self, client: poplib.POP3) -> SyncResult:
        listing = await asyncio.to_thread(_uidls, client)
        sizes = await asyncio.to_thread(_sizes, client)
        seen = await mailbox_repo.seen_uidls(self.db, self.account.name)
        if not seen and self.account.start_from_now and not await self._started(listing):
            return SyncResult(0, 0, 0)
        committed = [num for num, uidl in listing if uidl in seen]
        new = [(num, uidl) for num, uidl in listing if uidl not in seen]
        fetched = skipped = 0
        to_delete = list(committed)
        for start in range(0, len(new), self.account.batch_size):
            batch = new[start : start + self.account.batch_size]
            stored, left = await self._store_batch(client, batch, sizes)
            fetched += len(stored)
            skipped += len(left)
            to_delete.extend(stored)
        acted = 0
        if self.account.mode == "delete":
            for num in to_delete:
                await asyncio.to_thread(client.dele, num)
            acted = len(to_delete)
        # UIDLs remembered but no longer on the server were deleted by an earlier QUIT. Those
        # marked for deletion now stay remembered until a later pass sees them gone: if this
        # session dies before QUIT they are still there, and must not be imported again.
        await mailbox_repo.forget_uidls(self.db, self.account.name, {u for _, u in listing})
        return SyncResult(fetched, acted, skipped)

    async def _started(self, listing: list[tuple[int, str]]) -> bool:
        """For a new start-from-now account: remember what is there without importing it."""
        state = await mailbox_repo.states(self.db)
        if any(s["account"] == self.account.name and s["last_success_at"] for s in state):
            return True
        await mailbox_repo.store_pop3(self.db, [], self.account.name, [u for _, u in listing])
        log.info("account %s: starting from now (%d existing)", self.account.name, len(listing))
        return False

    async def _store_batch(
        self, client: poplib.POP3, batch: list[tuple[int, str]], sizes: dict[int, int]
    ) -> tuple[list[int], list[int]]:
        items: list[InboxItem] = []
        uidls: list[str] = []
        stored: list[int] = []
        oversized: list[int] = []
        for num, uidl in batch:
            if sizes.get(num, 0) > self.max_size:
                oversized.append(num)
                continue
            raw = await asyncio.to_thread(_retrieve, client, num)
            items.append(
                InboxItem(
                    source=f"pop3:{self.account.name}", raw=raw, trusted=self.account.trusted,
                    queue_name=self.account.queue, peer=f"{self.account.host}:{self.account.port}",
                )
            )  # fmt: skip
            uidls.append(uidl)
            stored.append(num)
        await mailbox_repo.store_pop3(self.db, items, self.account.name, uidls)
        if items and self.on_commit:
            self.on_commit(len(items))
        # Mail left as too large is listed again at every pass: counted by IMAP only.
        self.count(len(items), 0)
        if oversized:
            entries = [{"message": n, "size": sizes.get(n, 0)} for n in oversized]
            await mailbox_repo.record_skipped(self.db, self.account.name, entries)
        return stored, oversized


def connect(account: MailAccountConfig, *, oauth2_token: str = "") -> poplib.POP3:
    """(Thread) A logged-in POP3 session of `account` (with `oauth2_token` when its auth is
    "xoauth2"); `pytrs doctor` uses it too.

    Raises Pop3Error when the login is refused, OSError (ssl.SSLError among them) when the
    server cannot be reached or its certificate is not trusted.
    """
    if account.type == "pop3s":
        client: poplib.POP3 = poplib.POP3_SSL(
            account.host, account.port, timeout=account.timeout_seconds,
            context=tls_context(account),
        )  # fmt: skip
    else:
        client = poplib.POP3(account.host, account.port, timeout=account.timeout_seconds)
    try:
        if account.type == "pop3+starttls":
            client.stls(tls_context(account))
        if account.auth == "xoauth2":
            _xoauth2(client, account.user, oauth2_token)
        else:
            client.user(account.user)
            client.pass_(account.resolve_password())
    except BaseException as exc:
        client.close()
        if isinstance(exc, poplib.error_proto):
            raise Pop3Error(f"login failed: {_text(exc.args[0] if exc.args else b'')}") from exc
        raise
    return client


def _xoauth2(client: poplib.POP3, user: str, token: str) -> None:
    """SASL XOAUTH2. A refused token is answered with a "+ " challenge holding the server's
    reason (base64 JSON); the client sends an empty line and then gets "-ERR"."""
    if not token:
        raise Pop3Error("XOAUTH2 login without an access token")
    initial = base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()
    command = f"AUTH XOAUTH2 {initial}"
    if len(command) + 2 <= AUTH_LINE_OCTETS:
        reply = _command(client, command)
    else:
        reply = _command(client, "AUTH XOAUTH2")
        if not reply.startswith(b"+ ") and reply.rstrip() != b"+":
            raise Pop3Error(f"XOAUTH2 not started: {_text(reply)}")
        reply = _command(client, initial)
    if reply.startswith(b"+OK"):
        return
    try:
        reason = base64.b64decode(reply[1:].strip(), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        reason = _text(reply)
    try:
        _command(client, "")  # the empty answer the challenge waits for
    except poplib.error_proto as exc:
        raise Pop3Error(f"XOAUTH2 failed: {reason[:300]}") from exc
    raise Pop3Error(f"XOAUTH2 failed: {reason[:300]} (the server then said OK)")


def _command(client: poplib.POP3, line: str) -> bytes:
    # poplib has no AUTH: its own send-a-line-and-read-the-reply, which takes any "+" reply
    # (the "+ " challenge too) for success and raises error_proto on "-ERR".
    reply: bytes = client._shortcmd(line)  # type: ignore[attr-defined]
    return reply


def _text(reply: object) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _uidls(client: poplib.POP3) -> list[tuple[int, str]]:
    _response, lines, _octets = client.uidl()
    listing = []
    for line in lines:
        num, _, uidl = line.decode("ascii", "replace").partition(" ")
        # The server's word, stored as a key: a NUL or an over-long UIDL from a broken server
        # must neither fail the commit nor make two messages one (cut with a digest).
        listing.append((int(num), storable.value(pop3_seen.c.uidl, uidl.strip())))
    return listing


def _sizes(client: poplib.POP3) -> dict[int, int]:
    _response, lines, _octets = client.list()
    sizes = {}
    for line in lines:
        num, _, size = line.decode("ascii", "replace").partition(" ")
        sizes[int(num)] = int(size.split()[0])
    return sizes


def _retrieve(client: poplib.POP3, num: int) -> bytes:
    _response, lines, _octets = client.retr(num)
    # poplib has already undone the dot-stuffing; lines come without their CRLF.
    return b"\r\n".join(lines) + b"\r\n"
