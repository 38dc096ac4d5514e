"""`Idempotency-Key`: a retried request gets the first answer instead of a second effect.

Place in the flow: `operations.py` hands an `idempotent=True` operation here when the request
carries the header. The key is claimed (`schema/api_idempotency.reserve`) in a transaction the
operation then runs in (its `ctx.transaction()` is this one), and the answer is stored in it
before COMMIT: the key is remembered exactly when the effect committed. A retry (same agent,
same key, same request) is answered from the store with `Idempotent-Replayed: true`; the same
key with a different request is refused (422 `idempotency-key-reused`). Two requests with one
key at the same time make one effect: on PostgreSQL the second's claim waits for the first to
commit, fails on the primary key, and the second is answered from the store; on SQLite the
writers queue at BEGIN. An error answer is not stored (it rolled back): a retry runs again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from pytrs.schema import api_idempotency as store
from pytrs.web.api.auth import naive_utc
from pytrs.web.api.problems import Problem, validation_failed

if TYPE_CHECKING:
    from pytrs.web.api.operations import Context

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY = 255


def key_of(value: str) -> str:
    """The header's key. Raises Problem 422 unless it is 1–255 printable ASCII characters."""
    if not 1 <= len(value) <= MAX_KEY or not all(" " <= c <= "~" for c in value):
        message = f"must be 1 to {MAX_KEY} printable ASCII characters (a UUID is a good key)"
        raise validation_failed("header", [{"field": HEADER, "message": message}])
    return value


async def run(
    ctx: Context, call: Callable[[], Awaitable[Response]], fingerprint: bytes
) -> Response:
    """The answer to an idempotent request: stored, or made by `call` and stored."""
    key = key_of(ctx.request.headers[HEADER])
    request_hash = fingerprint.hex()
    user_id = ctx.user.id
    for _attempt in range(3):
        try:
            async with ctx.db.transaction() as conn:
                stored = await store.find(conn, user_id, key)
                if stored is not None:
                    return _replay(stored, request_hash)
                now = naive_utc(ctx.clock())
                try:
                    await store.reserve(conn, user_id, key, request_hash, now)
                except IntegrityError:
                    raise _Taken from None
                with ctx.inside(conn):
                    response = await call()
                if response.status_code >= 300:
                    raise _NotStored(response)
                body = bytes(response.body).decode()
                location = response.headers.get("location")
                await store.complete(conn, user_id, key, response.status_code, body, location)
                await store.prune(conn, now)
            return response
        except _Taken:
            # A concurrent request with this key committed first: answer from its row.
            log.info("api: Idempotency-Key of user %s was claimed concurrently; replaying", user_id)
            continue
        except _NotStored as not_stored:
            return not_stored.response
    raise Problem(
        409, "conflict", "Another request with this Idempotency-Key is in progress; retry."
    )


class _Taken(Exception):
    """Another transaction claimed the key first (and has committed by now)."""


class _NotStored(Exception):
    """An operation answered an error without raising: roll back, answer it, store nothing."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _replay(stored: store.StoredAnswer, request_hash: str) -> Response:
    if stored.request_hash != request_hash:
        raise Problem(
            422, "idempotency-key-reused",
            "This Idempotency-Key was used for a different request; "
            "send a new key for a new request.",
        )  # fmt: skip
    headers = {REPLAYED: "true"}
    if stored.location:  # a create's answer names what it made, the first time and now
        headers["Location"] = stored.location
    return Response(
        stored.body, status_code=stored.status, media_type="application/json", headers=headers
    )
