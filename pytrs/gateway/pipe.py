"""`pytrs deliver`: one message from an MTA pipe (Postfix `pipe`, Exim, procmail) into the inbox.

The exit status is the contract with the MTA (sysexits.h): 0 once the message is committed,
75 (EX_TEMPFAIL) when it could not be stored so the MTA keeps it and retries, 65 (EX_DATAERR)
for input that is not mail at all and 67 (EX_NOUSER) for a `--recipient` the inbox cannot
store (longer than its column, a NUL, not UTF-8), which retrying cannot fix.

Nothing is written to stdout: some MTAs treat any output as a failure (Exim's
`return_output`). The inbox id goes to the log on stderr ("queued as 12"), like the "250" of
the SMTP listener; Postfix's pipe discards it when the exit status is 0.
"""

from __future__ import annotations

import asyncio
import logging
import re

from pytrs.config import Config
from pytrs.gateway.addresses import recipient_problem
from pytrs.metrics.registry import MAIL_ACCEPTED, MAIL_REFUSED
from pytrs.schema import inbox_repo
from pytrs.schema.database import create_database, reason
from pytrs.vocabulary.inbox import InboxItem

log = logging.getLogger(__name__)

EX_OK, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL = 0, 65, 67, 75
STORE_TIMEOUT_SECONDS = 60.0

# A message starts with a header field (or an mbox "From " line); anything else is not mail.
_LOOKS_LIKE_MAIL = re.compile(rb"\A(?:From [^\r\n]*\r?\n)?[!-9;-~]+:")


def check_input(raw: bytes, max_size: int) -> str | None:
    """Why `raw` cannot be accepted as mail, or None when it can."""
    if not raw.strip():
        return "empty input"
    if len(raw) > max_size:
        return f"message of {len(raw)} bytes exceeds max_message_size {max_size}"
    if not _LOOKS_LIKE_MAIL.match(raw):
        return "input does not start with a mail header"
    return None


async def _store(config: Config, item: InboxItem) -> int:
    # Creating the database is `pytrs db upgrade`'s job: a pipe pointed at the wrong file
    # defers the mail and says so rather than storing it where nobody looks.
    db = create_database(config.database, pool=False, create_missing=False)
    try:
        async with asyncio.timeout(STORE_TIMEOUT_SECONDS), db.transaction() as conn:
            (inbox_id,) = await inbox_repo.store(conn, [item])
            return inbox_id
    finally:
        await db.close()


def deliver(
    config: Config, raw: bytes, *, queue: str = "", recipient: str = "", sender: str = "",
    untrusted: bool = False,
) -> int:  # fmt: skip
    """Store one piped message; returns the exit status for the MTA."""
    problem = check_input(raw, config.smtp.max_message_size)
    if problem:
        log.error("deliver: rejected: %s", problem)
        MAIL_REFUSED.labels("pipe", "pipe", "not-mail").inc()
        return EX_DATAERR
    unstorable = recipient_problem(recipient)
    if unstorable:
        log.error("deliver: rejected: recipient %s", unstorable)
        MAIL_REFUSED.labels("pipe", "pipe", "unstorable-recipient").inc()
        return EX_NOUSER
    item = InboxItem(
        source="pipe",
        raw=raw,
        recipient=recipient.lower(),
        envelope_from=sender,
        trusted=not untrusted and "pipe" in config.postmaster.trusted_sources,
        queue_name=queue,
    )
    try:
        inbox_id = asyncio.run(_store(config, item))
    except Exception as exc:  # any failure to store is temporary from the MTA's view
        log.error("deliver: could not store the message, the MTA should retry: %s", reason(exc))
        MAIL_REFUSED.labels("pipe", "pipe", "storage-error").inc()
        return EX_TEMPFAIL
    MAIL_ACCEPTED.labels("pipe", "pipe").inc()
    message_id = inbox_repo.dedup_key(raw)[0]
    # A mail without one logged "(Message-ID )", which read as a cut-off line.
    log.info(
        "deliver: queued as %d (%s)",
        inbox_id,
        f"Message-ID {message_id}" if message_id else "no Message-ID",
    )
    return EX_OK
