"""What the real-server harnesses (tests/dovecot.py, tests/cyrus.py) share: reading a mailbox
over IMAP as any client would, to check what pytrs left on the server."""

from __future__ import annotations

import contextlib
import imaplib
import re
from typing import Any


def quote_mailbox(mailbox: str) -> str:
    """An IMAP quoted string; imaplib sends mailbox arguments as they are."""
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MailboxReader:
    """UIDs and flags of a folder, read through the server's own `imap(user, password)`."""

    error: type[Exception] = RuntimeError  # what a refused command raises

    def imap(self, user: str, password: str) -> contextlib.AbstractContextManager[imaplib.IMAP4]:
        raise NotImplementedError

    def check(self, typ: str, data: Any, what: str) -> None:
        if typ != "OK":
            raise self.error(f"{what} failed: {typ} {data!r}")

    def uids(self, user: str, password: str, folder: str = "INBOX") -> list[int]:
        """UIDs of the messages in `folder` that are not flagged \\Deleted, ascending."""
        with self.imap(user, password) as conn:
            self.check(*conn.select(quote_mailbox(folder), readonly=True), f"EXAMINE {folder}")
            typ, data = conn.uid("SEARCH", "NOT", "DELETED")
            self.check(typ, data, "UID SEARCH")
            return sorted(int(uid) for uid in (data[0] or b"").split())

    def flags(self, user: str, password: str, folder: str = "INBOX") -> dict[int, set[str]]:
        """UID -> stored flags of every message in `folder`, \\Deleted ones included.

        \\Recent is left out: it belongs to a session, not to the message.
        """
        with self.imap(user, password) as conn:
            typ, data = conn.select(quote_mailbox(folder), readonly=True)
            self.check(typ, data, f"EXAMINE {folder}")
            if int(data[0] or 0) == 0:
                return {}
            typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS)")
            self.check(typ, data, "UID FETCH")
        result: dict[int, set[str]] = {}
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            uid = re.search(rb"UID (\d+)", line or b"")
            flags = re.search(rb"FLAGS \(([^)]*)\)", line or b"")
            if uid and flags:
                result[int(uid.group(1))] = set(flags.group(1).decode().split()) - {"\\Recent"}
        return result
