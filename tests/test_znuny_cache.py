"""Znuny's file cache of a ticket pytrs changed is dropped (Znuny 7.0 ``_TicketCacheClear`` and
``Cache/FileStorable.pm``), and nothing else is ever touched."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from pytrs.tickets.znuny_cache import forget_now

from .conftest import engine_name
from .helpers import make_mail
from .tickets.conftest import open_desk

pytestmark = pytest.mark.znuny


def stored(home: Path, cache_type: str, key: str) -> Path:
    """Write a cache file where Znuny's FileStorable keeps (`cache_type`, `key`)."""
    digest = hashlib.md5(key.encode()).hexdigest()
    path = home / "var/tmp/CacheFileStorable" / cache_type / digest[0] / digest[1] / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"pst0 cached")
    return path


def ticket_entries(home: Path, ticket_id: int) -> list[Path]:
    keys = [
        ("Ticket", f"Cache::GetTicket{ticket_id}"),
        ("Article", f"_MetaArticleList::{ticket_id}"),
    ]
    keys += [("Ticket", f"Cache::GetTicket{ticket_id}::{e}::{d}") for e in "01" for d in "01"]
    return [stored(home, t, k) for t, k in keys]


def test_the_ticket_entries_go_and_nothing_else(tmp_path: Path) -> None:
    mine = ticket_entries(tmp_path, 42)
    others = ticket_entries(tmp_path, 4)  # a prefix of 42's key must not match
    others.append(stored(tmp_path, "Queue", "QueueGet::ID::42"))
    assert forget_now(str(tmp_path), [42, 42]) == len(mine)
    assert not any(p.exists() for p in mine)
    assert all(p.exists() for p in others)
    assert forget_now(str(tmp_path), [42]) == 0  # already gone: fine


def test_no_cache_folder_is_no_error(tmp_path: Path) -> None:
    assert forget_now(str(tmp_path / "nowhere"), [1, 2]) == 0


def test_a_symlink_out_of_the_cache_folder_is_not_followed(tmp_path: Path) -> None:
    home = tmp_path / "znuny"
    outside = tmp_path / "elsewhere"
    victim = stored(outside, "Ticket", "Cache::GetTicket7")
    (home / "var/tmp/CacheFileStorable").mkdir(parents=True)
    (home / "var/tmp/CacheFileStorable/Ticket").symlink_to(
        outside / "var/tmp/CacheFileStorable/Ticket"
    )
    forget_now(str(home), [7])
    assert victim.exists()


@pytest.mark.skipif(engine_name() != "postgresql", reason="beside Znuny: PostgreSQL")
async def test_a_follow_up_drops_znunys_cache_of_its_ticket(
    database_settings: dict[str, Any], tmp_path: Path
) -> None:
    home = tmp_path / "znuny"
    desk = await open_desk({**database_settings, "mode": "znuny", "znuny_home": str(home)})
    try:
        ticket_id, tn = await desk.ticket()
        other_id, _ = await desk.ticket("Another printer")
        cached = ticket_entries(home, ticket_id)
        untouched = ticket_entries(home, other_id)
        await desk.deliver(make_mail(subject=f"Re: [Ticket#{tn}] Printer on fire"))
    finally:
        await desk.db.close()
    assert not any(p.exists() for p in cached)
    assert all(p.exists() for p in untouched)
