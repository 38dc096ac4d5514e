"""Holes found by the adversarial review of the web view, each pinned by a test (both engines).

Each test names the hole it closes: request bodies read without bound, a too-large form
answered as a CSRF failure, and forms the CSRF check's own parse turned into a 500 page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

from pytrs.schema.database import Database
from pytrs.schema.tables import outbox
from pytrs.web import guards

from ..zoom_support import (
    Roles,
)

Login = Callable[..., Awaitable[Any]]


async def test_chunked_body_over_the_limit_is_not_read_to_the_end(
    login: Login, roles: Roles, tn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hole: without Content-Length (chunked), the CSRF check read the whole body into memory
    before comparing its size with the limit."""
    monkeypatch.setattr(guards, "MAX_FORM_BYTES", 10_000)
    client = await login(roles.rw)
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield f"csrf_token={client.csrf}&body=".encode()
        for _ in range(100):
            sent += 1
            yield b"x" * 1000

    answer = await client.post(
        f"/tickets/{tn}/note",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413
    assert sent < 20  # stopped soon after the limit, not at the end of the stream


async def test_form_over_the_limit_is_413_with_its_limit(
    login: Login, roles: Roles, tn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hole: a too-large form was answered 403 (as a forged form) without saying the limit."""
    monkeypatch.setattr(guards, "MAX_FORM_BYTES", 2 * 1024 * 1024)
    client = await login(roles.rw)
    big = ("big.bin", b"\0" * (3 * 1024 * 1024), "application/octet-stream")
    answer = await client.post(
        f"/tickets/{tn}/reply",
        data={"csrf_token": client.csrf, "body": "Here it is."},
        files={"attachments": big},
    )
    assert answer.status_code == 413
    assert "larger than 2 MB" in answer.text


async def test_reply_text_over_one_megabyte_is_sent(
    login: Login, roles: Roles, tn: str, db: Database
) -> None:
    """Hole: the CSRF check parsed multipart forms with Starlette's default 1 MB per field,
    so a reply text the reply page accepts (up to 2 MB) ended as a 500 page."""
    client = await login(roles.rw)
    text = ("A long answer line.\n" * 60_000)[:1_200_000]
    answer = await client.post(
        f"/tickets/{tn}/reply",
        data={"csrf_token": client.csrf, "body": text},
        files={"attachments": ("note.txt", b"hello", "text/plain")},
    )
    assert answer.status_code == 303, answer.text[:500]
    assert answer.headers["location"] == f"/tickets/{tn}"
    async with db.connect() as conn:
        assert len((await conn.execute(select(outbox.c.id))).all()) == 1


async def test_too_many_files_is_a_clear_400(login: Login, roles: Roles, tn: str) -> None:
    """Hole: a form with more parts than the CSRF check's parser allowed was a 500 page."""
    client = await login(roles.rw)
    files = [("attachments", (f"f{i}.txt", b"x", "text/plain")) for i in range(1001)]
    answer = await client.post(
        f"/tickets/{tn}/reply", data={"csrf_token": client.csrf, "body": "x"}, files=files
    )
    assert answer.status_code == 400
    assert "Too many files" in answer.text
