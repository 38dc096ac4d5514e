"""Znuny's key for looking articles up by Message-ID (`article_data_mime.a_message_id_md5`).

Shared by the parser, which computes it for each mail, and by storage, which searches by it.
"""

from __future__ import annotations

import hashlib


def message_id_md5(message_id: str) -> str:
    """Return the hex MD5 of a "<...>" Message-ID as stored (utf-8), Znuny's a_message_id_md5."""
    data = message_id.encode("utf-8", "surrogatepass")
    return hashlib.md5(data, usedforsecurity=False).hexdigest()
