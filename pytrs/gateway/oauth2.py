"""OAuth2 access tokens for SASL XOAUTH2 mailbox logins (Microsoft 365, Google and the like).

An access token is cached until shortly before it expires; otherwise the refresh token is
exchanged at the account's token endpoint (RFC 6749 §6). Providers rotate refresh tokens: a new
one is committed to the database *before* the access token that came with it is used, because
the old one may already be revoked (REFERENCE Part B #6: a rotated token that was not saved
silently killed the channel after 90 days). The HTTP call runs in a thread under the account's
timeout; a refusal is an `OAuth2Error` with the provider's own error text for the admin.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pytrs.config import MailAccountConfig
from pytrs.schema.database import Database, conflict_insert, utcnow
from pytrs.schema.tables import mailbox_oauth2_token

# Refresh this long before the provider's expiry, so a token never runs out mid-session.
EXPIRY_MARGIN = timedelta(seconds=60)


class OAuth2Error(PermissionError):
    """The token endpoint refused or could not be reached; carries the provider's message."""


def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip() if path else ""


async def access_token(db: Database, account: MailAccountConfig) -> str:
    """A valid access token for `account`, refreshing (and saving a rotated refresh token)."""
    async with db.connect() as conn:
        row = (
            await conn.execute(
                select(mailbox_oauth2_token).where(mailbox_oauth2_token.c.account == account.name)
            )
        ).first()
    now = utcnow()
    if row and row.access_token and row.expires_at and row.expires_at - EXPIRY_MARGIN > now:
        return str(row.access_token)
    refresh = row.refresh_token if row else _read(account.oauth2_refresh_token_file)
    if not refresh:
        raise OAuth2Error(f"account {account.name}: no refresh token (oauth2_refresh_token_file)")
    answer = await asyncio.to_thread(_exchange, account, refresh)
    token = str(answer.get("access_token") or "")
    if not token:
        raise OAuth2Error(f"account {account.name}: the token endpoint sent no access_token")
    expires = now + timedelta(seconds=int(answer.get("expires_in") or 3600))
    await _save(db, account.name, str(answer.get("refresh_token") or refresh), token, expires)
    return token


async def _save(db: Database, account: str, refresh: str, access: str, expires: Any) -> None:
    values = {"refresh_token": refresh, "access_token": access, "expires_at": expires,
              "updated_at": utcnow()}  # fmt: skip
    async with db.transaction() as conn:
        await conn.execute(
            conflict_insert(conn, mailbox_oauth2_token)
            .values(account=account, **values)
            .on_conflict_do_update(index_elements=["account"], set_=values)
        )


def _exchange(account: MailAccountConfig, refresh_token: str) -> dict[str, Any]:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token,
            "client_id": account.oauth2_client_id}  # fmt: skip
    secret = _read(account.oauth2_client_secret_file)
    if secret:
        form["client_secret"] = secret
    if account.oauth2_scope:
        form["scope"] = account.oauth2_scope
    request = urllib.request.Request(
        account.oauth2_token_url,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=account.timeout_seconds) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", "replace")
        raise OAuth2Error(
            f"token endpoint refused the refresh token ({exc.code}): {detail}"
        ) from exc
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise OAuth2Error(f"token endpoint unreachable or invalid: {exc}") from exc
