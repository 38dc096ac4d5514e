"""The X-PyTRS-Loop marker: how pytrs recognises its own mail when it comes back.

Place in the flow: the composer (``responders.message``) puts a marker on every mail pytrs
sends; the intake side reads it (on the mail itself, or in the headers a bounce or an
auto-reply quotes) with ``read_loop_marker`` and never answers such mail (SPEC S8, REFERENCE
Part B #18, #19, #23). Pure functions; the key is read by
``config.secrets.loop_secret_from_config``.

The marker is an HMAC-SHA256 over the send time, the ticket number and the Message-ID of the
mail it was put on, under a key only pytrs knows, so another system cannot forge it to make
pytrs ignore mail. It names the Message-ID itself (rather than being checked against the
Message-ID of the mail carrying it) because providers rewrite Message-IDs, and it is the part
that survives in a bounce.

    X-PyTRS-Loop: v=1; t=1795632456; tn=2026112510000011; id=<…@example.com>; mac=…
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pytrs.config.secrets import MIN_SECRET_BYTES, loop_secret_from_config

# The key comes from the configuration (`config.secrets`); it is named here too, as the marker's.
__all__ = [
    "HEADER",
    "MIN_SECRET_BYTES",
    "LoopMark",
    "loop_secret_from_config",
    "make_loop_marker",
    "read_loop_marker",
]

HEADER = "X-PyTRS-Loop"
_MAC_BYTES = 16  # 128 bits: plenty against forgery, short enough for a header line
_DOMAIN_SEPARATION = b"pytrs-loop-v1\0"
_MARKER = re.compile(
    r"v=1; t=(?P<t>[0-9]{1,12}); tn=(?P<tn>[0-9A-Za-z-]{0,50}); "
    r"id=(?P<id><[^<>\s]{1,250}>); mac=(?P<mac>[A-Za-z0-9_-]{22})"
)


@dataclass(frozen=True, slots=True)
class LoopMark:
    """What a valid marker says: which of our mails this is, for which ticket, sent when."""

    message_id: str
    tn: str
    sent_at: datetime


def make_loop_marker(
    secret: bytes, message_id: str, tn: str = "", now: datetime | None = None
) -> str:
    """The X-PyTRS-Loop value for the mail `message_id` (with angle brackets) about ticket `tn`.

    Raises ValueError for a short secret or a value that could not be read back.
    """
    _check_secret(secret)
    stamp = int((now or datetime.now(UTC)).timestamp())
    value = f"v=1; t={stamp}; tn={tn}; id={message_id}; mac={_mac(secret, stamp, tn, message_id)}"
    if not _MARKER.fullmatch(value):
        raise ValueError(f"cannot mark Message-ID {message_id!r} / ticket {tn!r}")
    return value


def read_loop_marker(
    value: str,
    secrets: bytes | Sequence[bytes],
    *,
    max_age: timedelta | None = None,
    now: datetime | None = None,
) -> LoopMark | None:
    """The marker's content if `value` is a marker made with one of `secrets`, else None.

    Several secrets allow a key rotation (mail marked with the old key is still recognised).
    With `max_age`, older markers count as not ours. Never raises: the value comes from mail.
    """
    found = _MARKER.fullmatch(" ".join(value.split()))
    if found is None:
        return None
    stamp, tn, message_id = int(found["t"]), found["tn"], found["id"]
    keys = [secrets] if isinstance(secrets, bytes) else list(secrets)
    expected = [_mac(key, stamp, tn, message_id) for key in keys if len(key) >= MIN_SECRET_BYTES]
    if not any(hmac.compare_digest(found["mac"], mac) for mac in expected):
        return None
    sent_at = datetime.fromtimestamp(stamp, UTC)
    if max_age is not None and (now or datetime.now(UTC)) - sent_at > max_age:
        return None
    return LoopMark(message_id, tn, sent_at)


def _mac(secret: bytes, stamp: int, tn: str, message_id: str) -> str:
    data = b"\0".join((_DOMAIN_SEPARATION, str(stamp).encode(), tn.encode(), message_id.encode()))
    digest = hmac.new(secret, data, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the loop marker key must be at least {MIN_SECRET_BYTES} bytes")
