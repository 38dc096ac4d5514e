"""Znuny's file cache of the tickets pytrs changed, dropped so that Znuny's UI reads them anew.

Place in the flow: beside Znuny (``[database] mode = "znuny"``) with ``[database] znuny_home``
set, the postmaster worker calls `forget` with the tickets of a batch after the batch
committed. Without it Znuny would show a ticket as it had cached it (no new article, old
state) until the entry expired: Znuny caches for 20 days.

The facts follow Znuny 7.0:

* ``Kernel/System/Ticket.pm``, ``_TicketCacheClear``: on every ticket change Znuny deletes, in
  cache type ``Ticket`` (``new``: ``CacheType``), the key ``Cache::GetTicket<TicketID>`` (the
  ticket row ``TicketGet`` caches in the backend) and ``Cache::GetTicket<TicketID>::<0|1>::<0|1>``
  (its full result, extended or not, with or without dynamic fields; kept in memory only in
  7.0, deleted anyway), then calls ``Ticket/Article.pm`` ``_ArticleCacheClear``, which deletes
  ``_MetaArticleList::<TicketID>`` in cache type ``Article`` (the article index a ticket view
  lists).
* ``Kernel/System/Cache/FileStorable.pm`` (the default ``Cache::Module``): an entry lives in
  ``<TempDir>/CacheFileStorable/<Type>/<h0>/<h1>/<h>`` where ``h`` is the MD5 hex digest of the
  key's UTF-8 bytes and ``h0``, ``h1`` its first two characters (``Cache::SubdirLevels``,
  default 2); ``TempDir`` is ``<Home>/var/tmp`` unless configured otherwise.

Only those files are ever removed, and only when they resolve inside the cache folder; a file
that is not there is fine (nothing was cached). Another cache backend (Redis, Memcached) is not
reached here: see docs/znuny.md, "Znuny's cache".
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

SUBDIR_LEVELS = 2  # Znuny's Cache::SubdirLevels default


def cache_folder(znuny_home: str) -> Path:
    """Where Znuny's FileStorable cache lives for the Znuny installed in `znuny_home`."""
    return Path(znuny_home) / "var" / "tmp" / "CacheFileStorable"


def ticket_keys(ticket_id: int) -> list[tuple[str, str]]:
    """(cache type, key) of every entry Znuny drops when ticket `ticket_id` changes."""
    base = f"Cache::GetTicket{int(ticket_id)}"
    keys = [("Ticket", base)]
    keys += [
        ("Ticket", f"{base}::{extended}::{fields}") for extended in (0, 1) for fields in (0, 1)
    ]
    keys.append(("Article", f"_MetaArticleList::{int(ticket_id)}"))
    return keys


def entry_path(folder: Path, cache_type: str, key: str) -> Path:
    """The file FileStorable keeps (`cache_type`, `key`) in."""
    digest = hashlib.md5(key.encode("utf-8"), usedforsecurity=False).hexdigest()
    return folder.joinpath(cache_type, *digest[:SUBDIR_LEVELS], digest)


def forget_now(znuny_home: str, ticket_ids: Iterable[int]) -> int:
    """Delete the cache files of `ticket_ids`; returns how many there were. Never raises:
    a cache that cannot be cleared is logged, the tickets are in the database anyway."""
    folder = cache_folder(znuny_home)
    try:
        root = folder.resolve(strict=True)
    except OSError:
        return 0  # no cache folder: Znuny has cached nothing (or znuny_home is elsewhere)
    removed = 0
    for ticket_id in sorted(set(ticket_ids)):
        for cache_type, key in ticket_keys(ticket_id):
            path = entry_path(folder, cache_type, key)
            # Never outside the cache folder, whatever a symlink in it says.
            if not path.parent.resolve().is_relative_to(root):
                log.warning("Znuny cache: %s is outside %s; left alone", path, root)
                continue
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("Znuny cache: cannot remove %s: %s", path, exc)
    return removed


async def forget(znuny_home: str, ticket_ids: Iterable[int]) -> int:
    """`forget_now` off the event loop (a few unlinks per ticket)."""
    ids = sorted(set(ticket_ids))
    if not znuny_home or not ids:
        return 0
    return await asyncio.to_thread(forget_now, znuny_home, ids)
