"""`/admin/quarantine`: quarantined mail listed and shown escaped (parsed and raw), downloaded
as message/rfc822, retried as `pytrs inbox retry` does, and discarded with its reason kept in
the row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select, update

from pytrs.schema import inbox_repo
from pytrs.schema.database import Database
from pytrs.schema.tables import inbox
from pytrs.vocabulary.inbox import InboxItem
from pytrs.web.admin import when

from ..helpers import make_mail

ERROR = "ValueError: <img src=x onerror=alert(1)> refused\nTraceback (most recent call last): …"


async def quarantine(db: Database, raw: bytes, error: str = ERROR) -> int:
    """Store `raw` for support@example.com and quarantine it as the worker would."""
    async with db.transaction() as conn:
        [row_id] = await inbox_repo.store(
            conn, [InboxItem(source="pipe", raw=raw, recipient="support@example.com")]
        )
        await conn.execute(
            update(inbox).where(inbox.c.id == row_id)
            .values(state=inbox_repo.QUARANTINED, attempts=5, last_error=error)
        )  # fmt: skip
    return row_id


async def _row(db: Database, row_id: int) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(select(inbox).where(inbox.c.id == row_id))).one()


@pytest.fixture
async def admin(make_user: Callable[..., Awaitable[int]], login: Any) -> Any:
    await make_user("root", role="admin")
    return await login("root")


HOSTILE = make_mail(
    subject="<script>alert('subject')</script>",
    sender='"<b>Mallory</b>" <mallory@evil.example>',
    body="<iframe src=javascript:alert(2)></iframe>\n",
)


async def test_list_and_show_escape_everything(admin: Any, db: Database) -> None:
    row_id = await quarantine(db, HOSTILE)
    listing = (await admin.get("/admin/quarantine")).text
    assert f'href="/admin/quarantine/{row_id}"' in listing
    assert "&lt;script&gt;alert(" in listing and "<script>alert(" not in listing
    assert "&lt;img src=x onerror=alert(1)&gt; refused" in listing
    shown = (await admin.get(f"/admin/quarantine/{row_id}")).text
    assert "<script>alert(" not in shown and "<iframe src=javascript" not in shown
    assert "&lt;iframe src=javascript:alert(2)&gt;" in shown  # body text and raw view
    assert "&lt;b&gt;Mallory&lt;/b&gt;" in shown and "Traceback (most recent call last)" in shown
    assert f'href="/admin/quarantine/{row_id}/raw"' in shown


async def test_raw_download(admin: Any, db: Database) -> None:
    row_id = await quarantine(db, HOSTILE)
    raw = await admin.get(f"/admin/quarantine/{row_id}/raw")
    assert raw.status_code == 200 and raw.content == HOSTILE
    assert raw.headers["content-type"] == "message/rfc822"
    assert raw.headers["content-disposition"] == f'attachment; filename="inbox-{row_id}.eml"'
    assert raw.headers["x-content-type-options"] == "nosniff"


async def test_a_long_mail_shows_its_first_64_kb(admin: Any, db: Database) -> None:
    big = make_mail(subject="big", body="line of text\n" * 10000 + "THE END\n")
    row_id = await quarantine(db, big)
    shown = (await admin.get(f"/admin/quarantine/{row_id}")).text
    assert "the first 64 KB are shown" in shown and "THE END" in shown  # in the parsed text only
    assert shown.count("THE END") == 1


async def test_retry_puts_it_back_in_the_queue(admin: Any, db: Database) -> None:
    row_id = await quarantine(db, make_mail(subject="try again"))
    retried = await admin.post_form(f"/admin/quarantine/{row_id}/retry")
    assert retried.status_code == 303 and retried.headers["location"] == "/admin/quarantine"
    row = await _row(db, row_id)
    assert (row.state, row.attempts) == (inbox_repo.PENDING, 0)
    listing = (await admin.get("/admin/quarantine")).text
    assert f"inbox {row_id}: queued again" in listing and "The quarantine is empty." in listing
    assert (await admin.get(f"/admin/quarantine/{row_id}")).status_code == 404
    assert (await admin.post_form(f"/admin/quarantine/{row_id}/retry")).status_code == 404


async def test_discard_keeps_the_reason_in_the_row(admin: Any, db: Database) -> None:
    root_id = admin.session.user_id
    row_id = await quarantine(db, make_mail(subject="spam"))
    empty = await admin.post_form(f"/admin/quarantine/{row_id}/discard", {"reason": "  "})
    assert "discard: give a reason" in (await admin.get(empty.headers["location"])).text
    assert (await _row(db, row_id)).state == inbox_repo.QUARANTINED
    long = await admin.post_form(f"/admin/quarantine/{row_id}/discard", {"reason": "x" * 501})
    assert "longer than 500 characters" in (await admin.get(long.headers["location"])).text
    done = await admin.post_form(
        f"/admin/quarantine/{row_id}/discard", {"reason": "spam,\n <b>not</b> a customer"}
    )
    assert done.status_code == 303
    row = await _row(db, row_id)
    assert row.state == inbox_repo.DISCARDED and row.last_error == ERROR and row.raw is not None
    assert (row.discard_reason, row.discarded_by) == ("spam, <b>not</b> a customer", root_id)
    assert row.discarded_at is not None and row.trace is None  # columns, no JSON in trace
    listing = (await admin.get("/admin/quarantine")).text
    assert "The quarantine is empty." in listing and "&lt;b&gt;not&lt;/b&gt; a customer" in listing
    assert f"{when(row.discarded_at)} by root" in listing
    shown = (await admin.get(f"/admin/quarantine/{row_id}")).text
    assert 'id="retry"' not in shown
    assert f"Discarded {when(row.discarded_at)} UTC by root: spam, &lt;b&gt;not" in shown
    again = await admin.post_form(f"/admin/quarantine/{row_id}/discard", {"reason": "again"})
    assert "is discarded, not quarantined" in (await admin.get(again.headers["location"])).text


async def test_a_redelivery_of_a_discarded_mail_is_still_a_duplicate(
    admin: Any, db: Database
) -> None:
    mail = make_mail(subject="discard me once")
    row_id = await quarantine(db, mail)
    await admin.post_form(f"/admin/quarantine/{row_id}/discard", {"reason": "junk"})
    async with db.transaction() as conn:
        again = await inbox_repo.store(
            conn, [InboxItem(source="pipe", raw=mail, recipient="support@example.com")]
        )
    assert again == [row_id] and (await _row(db, row_id)).state == inbox_repo.DISCARDED


async def test_rows_outside_the_quarantine_are_404(admin: Any, db: Database) -> None:
    async with db.transaction() as conn:
        [pending] = await inbox_repo.store(conn, [InboxItem(source="pipe", raw=make_mail())])
    for url in (f"/admin/quarantine/{pending}", "/admin/quarantine/99999", "/admin/quarantine/x",
                f"/admin/quarantine/{pending}/raw"):  # fmt: skip
        assert (await admin.get(url)).status_code == 404
