"""IMAP fetching with an exactly-once UID cursor (aioimaplib), one folder of one account.

A sync pass: SELECT the folder; if its UIDVALIDITY differs from the cursor's, start the cursor
over (the inbox's content deduplication absorbs what was already stored, so nothing is imported
twice and nothing is skipped); list the UIDs; fetch the new ones with BODY.PEEK[] (never sets
\\Seen) in batches, commit each batch to the inbox together with the cursor, and only then move or
delete them on the server. Messages at or below the cursor that are still in the folder in move
or delete mode were committed before (a crash, or a server action that failed) and only need
their server action: they are acted on without being fetched again. Messages over the size limit
stay on the server and are reported.

The server actions after the commit never hold up fetching: new mail is stored first, and a
refused MOVE/STORE/EXPUNGE (or a move target that cannot be created) is kept as the account's
action failure and retried with backoff on later passes while new mail keeps coming in. The
default move target sits in the personal namespace the server announces (NAMESPACE), so a
server that keeps folders under `INBOX.` (Cyrus) gets `INBOX.pytrs-processed`.
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
from datetime import datetime, timedelta
from typing import Any

import aioimaplib

from pytrs.config import MailAccountConfig
from pytrs.metrics.registry import MAIL_ACCEPTED, MAIL_REFUSED
from pytrs.schema import mailbox_repo
from pytrs.schema.database import Database, utcnow
from pytrs.schema.mailbox_repo import Cursor
from pytrs.vocabulary.inbox import InboxItem

log = logging.getLogger(__name__)

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")
_EXISTS = re.compile(rb"^(\d+) EXISTS", re.MULTILINE | re.IGNORECASE)
_MESSAGE_COUNT = re.compile(rb"(?:\* )?(\d+) (EXISTS|EXPUNGE)\b", re.IGNORECASE)
_FETCH_UID = re.compile(rb"\bUID (\d+)")
_FETCH_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_LITERAL = re.compile(rb"\{(\d+)\}$")
# IDLE is re-issued before the 29-minute limit servers may enforce (RFC 2177).
IDLE_SECONDS = 25 * 60


# The default move target's name, inside the personal namespace.
DEFAULT_MOVE_TARGET = "pytrs-processed"
# Post-commit actions that the server refused are retried after these delays (doubling).
ACTION_RETRY_FIRST_SECONDS = 5.0
ACTION_RETRY_MAX_SECONDS = 300.0
# CREATE of an existing folder: RFC 5530's response code, or the usual texts without it.
_ALREADY_EXISTS = re.compile(rb"\[ALREADYEXISTS\]|already exists|mailbox exists", re.IGNORECASE)
_NAMESPACE_TOKEN = re.compile(rb'\(|\)|NIL|"((?:[^"\\]|\\.)*)"', re.IGNORECASE)


class ImapError(ConnectionError):
    """The server refused or broke off a command; the account is retried with backoff."""


class ActionError(ImapError):
    """The server refused a post-commit action (or creating its target); fetching goes on."""


@dataclass(frozen=True, slots=True)
class ActionFailure:
    """Post-commit actions the server keeps refusing, as `pytrs accounts` shows them."""

    text: str
    at: datetime
    retry_at: datetime
    failures: int


@dataclass(frozen=True, slots=True)
class SyncResult:
    fetched: int
    acted: int
    skipped: int
    # Stored messages whose server action is still to be done (retried later).
    pending: int = 0
    action_failure: ActionFailure | None = None


def tls_context(account: MailAccountConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=account.ca_file or None)
    if not account.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _ok(response: Any, what: str, error: type[ImapError] = ImapError) -> Any:
    if response.result != "OK":
        text = b" ".join(line for line in response.lines if isinstance(line, bytes))
        raise error(f"{what} failed: {response.result} {text.decode('utf-8', 'replace')[:300]}")
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
        self.move_target = account.move_to or DEFAULT_MOVE_TARGET
        self.target_ready = False
        # Set when the server closes the connection: aioimaplib would otherwise leave a
        # greeting or IDLE waiting for its whole timeout on a connection that is gone.
        self.lost = asyncio.Event()
        # Messages in the selected folder as the server last reported them, and whether it
        # reported more since the last SELECT: mail that lands between a pass's SEARCH and the
        # next IDLE is announced once, outside IDLE, and IDLE would not hear of it again.
        self.messages = 0
        self.arrived = False

    async def open(self, readonly: bool) -> None:
        account = self.account
        timeout = account.timeout_seconds
        if account.type == "imaps":
            self.client = aioimaplib.IMAP4_SSL(
                account.host, account.port, timeout=timeout, ssl_context=tls_context(account)
            )
        else:
            self.client = aioimaplib.IMAP4(account.host, account.port, timeout=timeout)
        self.client.protocol.conn_lost_cb = lambda exc: self.lost.set()
        self._watch_untagged()
        await self._unless_lost(self.client.wait_hello_from_server(), "before its greeting")
        if account.type == "imap+starttls":
            await self._starttls()
        if account.auth == "xoauth2":
            await self._xoauth2()
        else:
            _ok(await self.client.login(account.user, self.password), "LOGIN")
        if account.mode == "move" and not account.move_to:
            self.move_target = await self._default_move_target()
        await self.select(readonly)

    def _watch_untagged(self) -> None:
        """See every untagged response before aioimaplib files it. aioimaplib drops EXISTS
        sent while no command is pending ("ignored untagged response"), and hands the ones sent
        during a command only to that command; neither would wake IDLE later."""
        assert self.client is not None
        protocol = self.client.protocol
        file_response = protocol._untagged_response

        def noting(line: bytes) -> Any:
            self._note_untagged(line)
            return file_response(line)

        protocol._untagged_response = noting

    def _note_untagged(self, line: bytes) -> None:
        match = _MESSAGE_COUNT.match(line)
        if match is None:
            return
        number = int(match.group(1))
        if match.group(2).upper() == b"EXPUNGE":
            self.messages = max(self.messages - 1, 0)
        elif number > self.messages:
            self.arrived = True
            self.messages = number
        else:
            self.messages = number

    async def _unless_lost(self, work: Any, when: str) -> Any:
        """`work`'s result, or ImapError at once if the server closes the connection first."""
        task = asyncio.ensure_future(work)
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            done, _ = await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled (a deadline): the work goes with it
            task.cancel()
            raise
        finally:
            lost.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise ImapError(f"the server closed the connection {when}")

    async def _default_move_target(self) -> str:
        """`pytrs-processed` inside the personal namespace (Cyrus: `INBOX.pytrs-processed`)."""
        assert self.client is not None
        if "NAMESPACE" not in self.capabilities:
            return DEFAULT_MOVE_TARGET
        response = _ok(await self.client.namespace(), "NAMESPACE")
        for line in response.lines:
            if not isinstance(line, bytes) or not line.lstrip().startswith(
                (b"(", b"NIL", b"NAMESPACE")
            ):
                continue  # the completion line
            found = personal_namespace(line.removeprefix(b"NAMESPACE "))
            if found is not None:
                prefix, separator = found
                if prefix and separator and not prefix.endswith(separator):
                    prefix += separator
                return prefix + DEFAULT_MOVE_TARGET
        return DEFAULT_MOVE_TARGET

    async def ensure_move_target(self) -> None:
        """CREATE the move target once per session; "already exists" is fine, any other
        refusal is an ActionError naming the folder and the server's words."""
        assert self.client is not None
        if self.target_ready:
            return
        target = self.move_target
        response = await self.client.create(target)
        text = b" ".join(line for line in response.lines if isinstance(line, bytes))
        if response.result != "OK" and not _ALREADY_EXISTS.search(text):
            words = text.decode("utf-8", "replace").strip()[:300]
            raise ActionError(
                f"cannot create the move target {target!r}: {response.result} {words}"
            )
        self.target_ready = True

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
        exists = _EXISTS.search(text)
        self.messages = int(exists.group(1)) if exists else 0
        self.arrived = False  # the pass that follows searches this view

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
            _ok(
                await self.client.uid("move", _set(uids), target),
                f"MOVE to {target!r}",
                ActionError,
            )
            return
        _ok(await self.client.uid("copy", _set(uids), target), f"COPY to {target!r}", ActionError)
        await self.delete(uids)

    async def delete(self, uids: list[int]) -> None:
        assert self.client is not None
        stored = await self.client.uid("store", _set(uids), "+FLAGS.SILENT", r"(\Deleted)")
        _ok(stored, "STORE \\Deleted", ActionError)
        if "UIDPLUS" in self.capabilities:
            _ok(await self.client.uid("expunge", _set(uids)), "UID EXPUNGE", ActionError)
        else:
            _ok(await self.client.expunge(), "EXPUNGE", ActionError)

    async def idle(self, stop: asyncio.Event, seconds: float = IDLE_SECONDS) -> bool:
        """Wait in IDLE until the server reports a change (True) or `seconds` pass (False)."""
        assert self.client is not None
        if self.arrived:
            return True  # announced before IDLE began: the server will not say it again
        idle = await self._unless_lost(self.client.idle_start(timeout=seconds), "at IDLE")
        stopper = asyncio.ensure_future(stop.wait())
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            while True:
                push = asyncio.ensure_future(self.client.wait_server_push(timeout=seconds))
                done, _ = await asyncio.wait(
                    {push, stopper, lost}, return_when=asyncio.FIRST_COMPLETED
                )
                if lost in done:
                    push.cancel()
                    idle.cancel()
                    raise ImapError("the server closed the connection during IDLE")
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
            lost.cancel()
            if not self.lost.is_set():
                self.client.idle_done()
                await asyncio.wait_for(idle, self.account.timeout_seconds)

    async def close(self) -> None:
        if self.client is None:
            return
        # A connection that already broke has nothing to log out of (and no answer would come).
        if not self.lost.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.logout(), 5)
        transport = self.client.protocol.transport
        if transport is not None and not transport.is_closing():
            transport.close()


def personal_namespace(line: bytes) -> tuple[str, str] | None:
    """(prefix, separator) of the first personal namespace in a NAMESPACE response's data
    (`(("INBOX." ".")) NIL NIL`), or None when the server has none."""
    depth = 0
    strings: list[str] = []
    for match in _NAMESPACE_TOKEN.finditer(line):
        token = match.group(0)
        if token == b"(":
            depth += 1
        elif token == b")":
            depth -= 1
            if depth == 0:
                break  # end of the personal namespaces
        elif depth == 0:
            return None  # NIL: no personal namespace
        elif depth == 2:
            value = match.group(1)
            strings.append(
                "" if value is None else re.sub(r"\\(.)", r"\1", value.decode("utf-8", "replace"))
            )
            if len(strings) == 2:
                return strings[0], strings[1]
    return None


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Post-commit actions the server refused; kept across sessions of this account task.
        self.action_failure: ActionFailure | None = None

    @property
    def readonly(self) -> bool:
        return self.account.mode == "keep"

    def action_retry_in(self) -> float | None:
        """Seconds until refused server actions are due again (None: nothing waiting)."""
        if self.action_failure is None:
            return None
        return max((self.action_failure.retry_at - utcnow()).total_seconds(), 0.0)

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
        # Stored before (a crash, an interrupted pass, a refused action): only the server
        # action is missing. New mail is fetched first, so a refused action never holds it up.
        pending = [] if self.readonly else [u for u in uids if u <= cursor.last_uid]
        new = [u for u in uids if u > cursor.last_uid]
        acted = fetched = skipped = 0
        for start in range(0, len(new), self.account.batch_size):
            batch = new[start : start + self.account.batch_size]
            stored, left = await self._store_batch(session, batch, cursor)
            cursor = Cursor(cursor.uidvalidity, batch[-1])
            fetched += len(stored)
            skipped += len(left)
            if not self.readonly:
                pending += stored
                # Act batch by batch while the server accepts; after a refusal, at the end.
                if pending and self.action_failure is None and await self._act_on(session, pending):
                    acted += len(pending)
                    pending = []
        due = self.action_retry_in() in (None, 0.0)
        if pending and due and await self._act_on(session, pending):
            acted += len(pending)
            pending = []
        if not pending:
            self.action_failure = None  # nothing waits for the server any more
        return SyncResult(fetched, acted, skipped, len(pending), self.action_failure)

    async def _act_on(self, session: ImapSession, uids: list[int]) -> bool:
        """The server action for committed `uids`; False (and remembered) if it was refused.
        A broken connection is not a refusal: it ends the session like any other failure."""
        try:
            await self._act(session, uids)
        except ActionError as exc:
            failures = self.action_failure.failures + 1 if self.action_failure else 1
            delay = min(ACTION_RETRY_FIRST_SECONDS * 2 ** (failures - 1), ACTION_RETRY_MAX_SECONDS)
            now = utcnow()
            what = "move" if self.account.mode == "move" else "delete"
            text = (
                f"server action failing ({what} of {len(uids)} stored message(s), attempt "
                f"{failures}; fetching goes on): {exc}"
            )
            self.action_failure = ActionFailure(text, now, now + timedelta(seconds=delay), failures)
            log.warning("account %s: %s; retrying in %.0f s", self.account.name, text, delay)
            return False
        if self.action_failure is not None:
            log.info("account %s: server actions work again", self.account.name)
            self.action_failure = None
        return True

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
            try:
                await session.ensure_move_target()
                await session.move(uids, session.move_target)
            except ActionError:
                session.target_ready = False  # deleted meanwhile? CREATE it again next time
                raise
        elif self.account.mode == "delete":
            await session.delete(uids)
