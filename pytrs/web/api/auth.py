"""Who calls the API: the bearer token of a request → `ApiUser` (or a 401 problem).

Place in the flow: `operations.py` calls `authenticate` before any operation runs. The token
is looked up by its SHA-256 (`schema/api_tokens.py`); a revoked or expired token, or one whose
agent is disabled or gone, authenticates nothing. The agent and its queues are read for every
request (`schema/agent_access.py`, as the web view does), so `pytrs users disable` or a changed
queue permission takes effect at once. Session cookies never authenticate here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

from starlette.requests import Request

from pytrs.schema import agent_access, api_tokens
from pytrs.schema.agent_access import READ_WRITE
from pytrs.web.api.problems import unauthorized

TOKEN_MAX_LENGTH = 200  # ours are 49 characters; anything longer is not one of ours


@dataclass(frozen=True, slots=True)
class ApiUser:
    """The agent a token acts as, read at the start of this request, and the token's scope.
    Same queue semantics as the web view's `WebUser`: an admin has "rw" on every queue."""

    id: int
    login: str
    name: str
    email: str
    is_admin: bool
    queues: Mapping[int, str]  # queue id → "rw" | "ro"
    scope: str  # "read" | "write" | "admin"
    token_id: int

    def can_read(self, queue_id: int) -> bool:
        return self.is_admin or queue_id in self.queues

    def can_write(self, queue_id: int) -> bool:
        return self.is_admin or self.queues.get(queue_id) == READ_WRITE

    @property
    def readable(self) -> frozenset[int]:
        """Queue ids the user may read (every queue for an admin): filter queries by these."""
        return frozenset(self.queues)

    @property
    def writable(self) -> frozenset[int]:
        """Queue ids the user may act in (every queue for an admin)."""
        return frozenset(q for q, key in self.queues.items() if key == READ_WRITE)


def naive_utc(seconds: float) -> datetime:
    """The app clock's reading as stored times are: naive UTC."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


async def authenticate(request: Request) -> ApiUser:
    """The caller of `request`. Raises Problem 401 (with `WWW-Authenticate: Bearer`)."""
    token = bearer_token(request)
    db = request.app.state.db
    now = naive_utc(request.app.state.clock())
    row = await api_tokens.lookup(db, token)
    if row is None or row.state(now) != "active":
        # One answer for unknown, revoked and expired: a guesser learns nothing.
        raise unauthorized("The bearer token is not valid (unknown, expired or revoked).")
    account = await agent_access.by_id(db, row.user_id)
    if account is None or not account.valid:
        raise unauthorized("The token's agent account is disabled; ask an administrator.")
    await api_tokens.touch(db, row, now=now)
    return ApiUser(
        id=account.id, login=account.login, name=account.name, email=account.email,
        is_admin=account.admin, queues=MappingProxyType(dict(account.queues)),
        scope=row.scope, token_id=row.id,
    )  # fmt: skip


def bearer_token(request: Request) -> str:
    """The token of the Authorization header. Raises Problem 401 when there is none."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized(
            "This API needs a bearer token: send 'Authorization: Bearer <token>' "
            "(create one with 'pytrs tokens create')."
        )
    if len(token) > TOKEN_MAX_LENGTH or not token.isascii() or not token.isprintable():
        raise unauthorized("The bearer token is not valid (unknown, expired or revoked).")
    return token
