"""One accepted copy of a mail, as every ingress path hands it to the durable inbox.

The gateway (SMTP/LMTP, pipe, fetchers) builds these; `schema.inbox_repo` stores them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One accepted copy of a message for one recipient, as the gateway hands it over."""

    source: str
    raw: bytes
    recipient: str = ""
    envelope_from: str = ""
    peer: str = ""
    trusted: bool = False
    queue_name: str = ""
    # (message_id, dedup key) when the caller computed them already (`with_keys`).
    key: tuple[str, str] | None = None
