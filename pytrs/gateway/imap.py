"""IMAP fetching with an exactly-once UID cursor (aioimaplib), one folder of one account.

A sync pass: SELECT the folder; if its UIDVALIDITY differs from the cursor's, start the cursor
over (the inbox's content deduplication absorbs what was already stored, so nothing is imported
twice and nothing is skipped); list the UIDs; fetch the new ones with BODY.PEEK[] (never sets
\\Seen) in batches, commit each batch to the inbox together with the cursor, and only then move or
delete them on the server. Messages at or below the cursor that are still in the folder in move
or delete mode were committed before a crash and only need their server action: they are acted
on without being fetched again. Messages over the size limit stay on the server and are reported.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aioimaplib

from pytrs.config import MailAccountConfig
from pytrs.metrics.registry import MAIL_ACCEPTED, MAIL_REFUSED
from pytrs.schema import mailbox_repo
from pytrs.schema.database import Database
from pytrs.schema.mailbox_repo import Cursor
from pytrs.vocabulary.inbox import InboxItem

log = logging.getLogger(__name__)

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")
_FETCH_UID = re.compile(rb"\bUID (\d+)")
_FETCH_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_LITERAL = re.compile(rb"\{(\d+)\}$")
# IDLE is re-issued before the 29-minute limit servers may enforce (RFC 2177).
IDLE_SECONDS = 25 * 60


class ImapError(ConnectionError):
    """The server refused or broke off a command; the account is retried with backoff."""


@dataclass(frozen=True, slots=True)
class SyncResult:
    fetched: int
    acted: int
    skipped: int


def tls_context(account: MailAccountConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=account.ca_file or None)
    if not account.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _ok(response: Any, what: str) -> Any:
    if response.result != "OK":
        text = b" ".join(line for line in response.lines if isinstance(line, bytes))
        raise ImapError(f"{what} failed: {text.decode('utf-8', 'replace')[:300]}")
    return response


class ImapSession:
    """One authenticated connection with the folder selected."""

    def __init__(
        self, account: MailAccountConfig, password: str = "", *, oauth2_token: str = ""
    ) -> None:
        self.account = account
        self.password = password
        self.oauth2_token = oauth2_token
        self.client: aioimaplib.IMAP4 | None = None
        self.uidvalidity = 0
        self.uidnext = 0

    async def open(self, readonly: bool) -> None:
        account = self.account
        timeout = account.timeout_seconds
        if account.type == "imaps":
            self.client = aioimaplib.IMAP4_SSL(
                account.host, account.port, timeout=timeout, ssl_context=tls_context(account)
            )
        else:
            self.client = aioimaplib.IMAP4(account.host, account.port, timeout=timeout)
        await self.client.wait_hello_from_server()
        if account.type == "imap+starttls":
            await self._starttls()
        if account.auth == "xoauth2":
            await self._xoauth2()
        else:
            _ok(await self.client.login(account.user, self.password), "LOGIN")
        if account.mode == "move":
            # Fine if it exists already; a real problem shows up when moving.
            await self.client.create(move_target(account))
        await self.select(readonly)

    async def _xoauth2(self) -> None:
        """SASL XOAUTH2. On failure the server sends its reason as a challenge and waits for an
        empty answer before its NO; aioimaplib would wait forever, so we answer it here."""
        assert self.client is not None
        protocol = self.client.protocol
        original = protocol._continuation
        reason: list[str] = []

        def continuation(line: bytes) -> None:
            pending = protocol.pending_sync_command
            if pending is not None and pending.name == "AUTHENTICATE":
                with contextlib.suppress(ValueError):
                    reason.append(base64.b64decode(line[1:].strip()).decode("utf-8", "replace"))
                protocol.transport.write(b"\r\n")
                return
            original(line)

        protocol._continuation = continuation
        try:
            response = await self.client.xoauth2(self.account.user, self.oauth2_token)
        finally:
            protocol._continuation = original
        if response.result != "OK" and reason:
            raise ImapError(f"XOAUTH2 failed: {reason[0][:300]}")
        _ok(response, "XOAUTH2")

    async def _starttls(self) -> None:
        # aioimaplib has no STARTTLS of its own: send the command, then upgrade the transport.
        assert self.client is not None
        protocol = self.client.protocol
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        _ok(await asyncio.wait_for(protocol.execute(command), self.account.timeout_seconds),
            "STARTTLS")  # fmt: skip
        loop = asyncio.get_running_loop()
        protocol.transport = await loop.start_tls(
            protocol.transport, protocol, tls_context(self.account),
            server_hostname=self.account.host,
        )  # fmt: skip
        await asyncio.wait_for(protocol.capability(), self.account.timeout_seconds)

    async def select(self, readonly: bool) -> None:
        assert self.client is not None
        folder = self.account.folder
        if readonly:
            response = _ok(await self.client.examine(folder), f"EXAMINE {folder}")
            # aioimaplib tracks SELECT only; EXAMINE selects the folder just the same.
            self.client.protocol.state = aioimaplib.SELECTED
        else:
            response = _ok(await self.client.select(folder), f"SELECT {folder}")
        text = b"\n".join(line for line in response.lines if isinstance(line, bytes))
        validity, uidnext = _UIDVALIDITY.search(text), _UIDNEXT.search(text)
        if validity is None:
            raise ImapError(f"SELECT {folder}: the server sent no UIDVALIDITY")
        self.uidvalidity = int(validity.group(1))
        self.uidnext = int(uidnext.group(1)) if uidnext else 0

    @property
    def capabilities(self) -> set[str]:
        assert self.client is not None
        return set(self.client.protocol.capabilities)

    async def uids(self, above: int = 0) -> list[int]:
        """UIDs in the folder (those above `above` only, when it is not 0)."""
        assert self.client is not None
        criteria = ("UID", f"{above + 1}:*") if above else ("ALL",)
        response = _ok(await self.client.uid_search(*criteria, charset=None), "UID SEARCH")
        found: set[int] = set()
        for line in response.lines:
            tokens = bytes(line).split() if isinstance(line, bytes | bytearray) else []
            # The untagged SEARCH data is a line of numbers; the completion text is not.
            if tokens and all(token.isdigit() for token in tokens):
                found.update(int(token) for token in tokens)
        # "n:*" always includes the highest UID, even when it is below n.
        return sorted(u for u in found if u > above)

    async def sizes(self, uids: list[int]) -> dict[int, int]:
        assert self.client is not None
        response = _ok(await self.client.uid("fetch", _set(uids), "(RFC822.SIZE)"), "FETCH SIZE")
        sizes: dict[int, int] = {}
        for line in response.lines:
            if isinstance(line, bytes):
                uid, size = _FETCH_UID.search(line), _FETCH_SIZE.search(line)
                if uid and size:
                    sizes[int(uid.group(1))] = int(size.group(1))
        return sizes

    async def fetch(self, uids: list[int]) -> dict[int, bytes]:
        """Raw messages by UID, fetched with BODY.PEEK[] so that \\Seen is never set."""
        assert self.client is not None
        response = _ok(await self.client.uid("fetch", _set(uids), "(UID BODY.PEEK[])"), "FETCH")
        return parse_fetch(response.lines)

    async def move(self, uids: list[int], target: str) -> None:
        assert self.client is not None
        if "MOVE" in self.capabilities:
            _ok(await self.client.uid("move", _set(uids), target), "MOVE")
            return
        _ok(await self.client.uid("copy", _set(uids), target), "COPY")
        await self.delete(uids)

    async def delete(self, uids: list[int]) -> None:
        assert self.client is not None
        _ok(await self.client.uid("store", _set(uids), "+FLAGS.SILENT", r"(\Deleted)"), "STORE")
        if "UIDPLUS" in self.capabilities:
            _ok(await self.client.uid("expunge", _set(uids)), "UID EXPUNGE")
        else:
            _ok(await self.client.expunge(), "EXPUNGE")

    async def idle(self, stop: asyncio.Event, seconds: float = IDLE_SECONDS) -> bool:
        """Wait in IDLE until the server reports a change (True) or `seconds` pass (False)."""
        assert self.client is not None
        idle = await self.client.idle_start(timeout=seconds)
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while True:
                push = asyncio.ensure_future(self.client.wait_server_push(timeout=seconds))
                done, _ = await asyncio.wait({push, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if stopper in done:
                    push.cancel()
                    return False
                try:
                    lines = push.result()
                except TimeoutError:
                    return False
                if lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    return False
                if any(b"EXISTS" in line for line in lines if isinstance(line, bytes)):
                    return True
        finally:
            stopper.cancel()
            self.client.idle_done()
            await asyncio.wait_for(idle, self.account.timeout_seconds)

    async def close(self) -> None:
        if self.client is None:
            return
        # A connection that already broke has nothing to log out of.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.logout(), 5)
        transport = self.client.protocol.transport
        if transport is not None and not transport.is_closing():
            transport.close()


def move_target(account: MailAccountConfig) -> str:
    return account.move_to or "pytrs-processed"


def _set(uids: list[int]) -> str:
    return ",".join(str(u) for u in uids)


def parse_fetch(lines: list[Any]) -> dict[int, bytes]:
    """Message bodies by UID from aioimaplib's FETCH lines (a header line with `{size}`, the
    literal as a bytearray, then the closing line, which may carry the UID instead)."""
    found: dict[int, bytes] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        if isinstance(line, bytes) and _LITERAL.search(line) and index + 1 < len(lines):
            literal = lines[index + 1]
            closing = lines[index + 2] if index + 2 < len(lines) else b""
            uid = _FETCH_UID.search(line) or (
                _FETCH_UID.search(closing) if isinstance(closing, bytes) else None
            )
            if uid is not None and isinstance(literal, bytes | bytearray):
                found[int(uid.group(1))] = bytes(literal)
            index += 2
            continue
        index += 1
    return found


class AccountFetcher:
    """What every protocol's fetcher knows: its account, where to store, the size limit, and
    whom to tell (the postmaster workers) when messages were committed."""

    def __init__(
        self,
        account: MailAccountConfig,
        db: Database,
        *,
        default_max_size: int,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self.account = account
        self.db = db
        self.max_size = account.max_message_size or default_max_size
        self.on_commit = on_commit
        source = "pop3" if account.type.startswith("pop3") else "imap"
        self._accepted = MAIL_ACCEPTED.labels(source, account.name)
        self._too_large = MAIL_REFUSED.labels(source, account.name, "too-large")

    def count(self, stored: int, oversized: int) -> None:
        """Metrics of one committed batch: stored, and left on the server as too large."""
        self._accepted.inc(stored)
        self._too_large.inc(oversized)


class ImapFetcher(AccountFetcher):
    """Syncs one account's folder into the inbox, a pass per call of `sync()`."""

    @property
    def readonly(self) -> bool:
        return self.account.mode == "keep"

    async def sync(self, session: ImapSession) -> SyncResult:
        """One pass over the folder: fetch what is new, then act on what is committed."""
        name, folder = self.account.name, self.account.folder
        cursor = await mailbox_repo.get_cursor(self.db, name, folder)
        if cursor is None and self.account.start_from_now:
            cursor = Cursor(session.uidvalidity, max(session.uidnext - 1, 0))
            if not session.uidnext:
                cursor = Cursor(session.uidvalidity, max(await session.uids(), default=0))
            await mailbox_repo.set_cursor(self.db, name, folder, cursor)
            log.info("account %s: starting from now (UID %d)", name, cursor.last_uid)
        if cursor is None or cursor.uidvalidity != session.uidvalidity:
            if cursor is not None:
                log.warning(
                    "account %s: UIDVALIDITY of %s changed (%d → %d): re-reading the folder, "
                    "the inbox drops what it already has",
                    name, folder, cursor.uidvalidity, session.uidvalidity,
                )  # fmt: skip
            cursor = Cursor(session.uidvalidity, 0)
            await mailbox_repo.set_cursor(self.db, name, folder, cursor)
        # Keep mode leaves everything in the folder: list only what is beyond the cursor.
        uids = await session.uids(cursor.last_uid if self.readonly else 0)
        committed = [u for u in uids if u <= cursor.last_uid]
        new = [u for u in uids if u > cursor.last_uid]
        acted = 0
        if committed and not self.readonly:
            # Stored before a crash or an interrupted pass; only the server action is missing.
            await self._act(session, committed)
            acted += len(committed)
        fetched = skipped = 0
        for start in range(0, len(new), self.account.batch_size):
            batch = new[start : start + self.account.batch_size]
            stored, left = await self._store_batch(session, batch, cursor)
            cursor = Cursor(cursor.uidvalidity, batch[-1])
            fetched += len(stored)
            skipped += len(left)
            if stored and not self.readonly:
                await self._act(session, stored)
                acted += len(stored)
        return SyncResult(fetched, acted, skipped)

    async def _store_batch(
        self, session: ImapSession, batch: list[int], cursor: Cursor
    ) -> tuple[list[int], list[int]]:
        sizes = await session.sizes(batch)
        wanted = [u for u in batch if sizes.get(u, 0) <= self.max_size]
        oversized = [u for u in batch if u not in wanted]
        raws = await session.fetch(wanted) if wanted else {}
        missing = [u for u in wanted if u not in raws]
        if missing:
            # Expunged by someone else between SEARCH and FETCH: nothing to store.
            log.info("account %s: UIDs %s vanished before fetch", self.account.name, missing)
        items = [
            InboxItem(
                source=f"imap:{self.account.name}", raw=raws[u], trusted=self.account.trusted,
                queue_name=self.account.queue, peer=f"{self.account.host}:{self.account.port}",
            )
            for u in wanted if u in raws
        ]  # fmt: skip
        await mailbox_repo.store_and_advance(
            self.db, items, self.account.name, self.account.folder,
            Cursor(cursor.uidvalidity, batch[-1]),
        )  # fmt: skip
        if items and self.on_commit:
            self.on_commit(len(items))
        self.count(len(items), len(oversized))
        if oversized:
            entries = [
                {"uid": u, "size": sizes.get(u, 0), "uidvalidity": cursor.uidvalidity}
                for u in oversized
            ]
            await mailbox_repo.record_skipped(self.db, self.account.name, entries)
            log.warning(
                "account %s: %d message(s) over %d bytes left on the server: UIDs %s",
                self.account.name, len(oversized), self.max_size, oversized,
            )  # fmt: skip
        return [u for u in wanted if u in raws], oversized

    async def _act(self, session: ImapSession, uids: list[int]) -> None:
        if self.account.mode == "move":
            await session.move(uids, move_target(self.account))
        elif self.account.mode == "delete":
            await session.delete(uids)
