"""`GET /api/v1/accounts`: the mail accounts with their health (admin, read-only).

Place in the flow: the accounts come from the configuration (`[[mail_accounts]]`), their state
from `mailbox_state` and `mailbox_cursor`, their backlog from the inbox, through
`schema/mailbox_repo.health` — the same data `pytrs accounts` prints and `/admin/accounts`
shows. No secret of an account (password, OAuth2 token) is part of it.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pytrs.schema import mailbox_repo
from pytrs.web.api.operations import Context, Operations

api = Operations(
    tag="accounts", description="Mail accounts and their health (administrators only)."
)


class FetchCursor(BaseModel):
    """How far one folder has been committed to the inbox."""

    folder: str = Field(description="The folder (POP3: INBOX).")
    uidvalidity: int | None = Field(description="IMAP: the folder's UIDVALIDITY.")
    last_uid: int | None = Field(description="IMAP: the highest UID committed to the inbox.")
    uidls_seen: int | None = Field(description="POP3: the UIDLs remembered as stored.")
    updated_at: datetime | None = Field(description="When it last moved (UTC).")


class SkippedMail(BaseModel):
    uid: int | str = Field(description="The server's UID (IMAP) or UIDL (POP3) of the mail.")
    size: int = Field(description="Its size in bytes, over the account's limit.")


class AccountHealth(BaseModel):
    """One configured mail account and how its fetching goes."""

    account: str = Field(description="The account's name in the configuration.")
    type: str = Field(description="imap, imaps, pop3, pop3s.")
    host: str = Field(description="The server.")
    folder: str = Field(description="The folder fetched.")
    mode: str = Field(description="What happens on the server after a fetch (delete, keep, …).")
    last_success_at: datetime | None = Field(description="The last successful fetch (UTC).")
    last_error: str | None = Field(description="The last fetch error.")
    last_error_at: datetime | None = Field(description="When it happened (UTC).")
    consecutive_failures: int = Field(description="Failed fetches since the last success.")
    next_attempt_at: datetime | None = Field(
        description="After failures, no fetch before then (backoff)."
    )
    messages_fetched: int = Field(description="Mail committed to the inbox, in all.")
    backlog: int = Field(description="Its mail still pending in the inbox.")
    owner: str | None = Field(description="The daemon holding the fetch lease.")
    lease_until: datetime | None = Field(description="Until when it holds it (UTC).")
    cursors: list[FetchCursor] = Field(description="How far each folder has been fetched.")
    skipped: list[SkippedMail] = Field(description="Mail left on the server: too large.")


@api.get(
    "/accounts",
    access="admin",
    response=list[AccountHealth],
    summary="Mail accounts and their health",
)
async def list_accounts(ctx: Context) -> list[AccountHealth]:
    """Every configured mail account with its last success and error, its backoff, its fetch
    cursors and its backlog, in the configuration's order. Not paged: the accounts are the
    configuration's few."""
    rows = await mailbox_repo.health(ctx.db, ctx.config)
    return [AccountHealth.model_validate(row) for row in rows]
