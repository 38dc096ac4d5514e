"""`/admin/outbox`: failed mail listed with its ticket, retried as `pytrs outbox retry` does
(and the sender woken), suppressions lifted as `pytrs outbox unsuppress` does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from pytrs.schema import outbox_repo
from pytrs.schema.database import Database, utcnow
from pytrs.schema.outbox_repo import FAILED, PENDING
from pytrs.schema.tables import address_suppression, outbox

from ..outbound.conftest import make_ticket
from ..test_cli_outbox import REFUSED, make_row


@pytest.fixture
async def admin(make_user: Callable[..., Awaitable[int]], login: Any) -> Any:
    await make_user("root", role="admin")
    return await login("root")


@pytest.fixture
def woken(web_app: Any) -> list[int]:
    calls: list[int] = []
    web_app.state.wake_sender = lambda: calls.append(1)
    return calls


async def _state(db: Database, row_id: int) -> str:
    async with db.connect() as conn:
        return str(await conn.scalar(select(outbox.c.state).where(outbox.c.id == row_id)))


async def test_failed_mail_is_listed_and_retried(
    admin: Any, db: Database, woken: list[int]
) -> None:
    ticket_id, _ = await make_ticket(db, tn="2026112510000017")
    failed = await make_row(db, "ann@customer.example", outcome=REFUSED, ticket_id=ticket_id)
    page = (await admin.get("/admin/outbox")).text
    assert "ann@customer.example" in page and "Re: printer" in page
    assert 'href="/tickets/2026112510000017"' in page and "relaying denied" in page
    # The row's own Retry form: posts its id with the session's CSRF token.
    forms = [f.split("</form>")[0] for f in page.split('action="/admin/outbox/retry"')[1:]]
    [form] = [f for f in forms if f'name="id" value="{failed}"' in f]
    assert f'name="csrf_token" value="{admin.csrf}"' in form and ">Retry</button>" in form
    retried = await admin.post_form("/admin/outbox/retry", {"id": str(failed)})
    assert retried.status_code == 303 and woken == [1]
    assert await _state(db, failed) == PENDING
    page = (await admin.get("/admin/outbox")).text
    assert "1 message(s) queued again." in page and "ann@customer.example" not in page


async def test_retry_names_rows_it_leaves_alone(admin: Any, db: Database, woken: list[int]) -> None:
    failed = await make_row(db, "ann@customer.example", outcome=REFUSED)
    waiting = await make_row(db, "bob@customer.example")
    await admin.post_form("/admin/outbox/retry", {"id": str(waiting)})
    page = (await admin.get("/admin/outbox")).text
    assert f"outbox {waiting}: is pending, not failed; the sender tries it on its own" in page
    assert woken == []
    await admin.post_form("/admin/outbox/retry", {"id": "424242"})
    assert "outbox 424242: no such row" in (await admin.get("/admin/outbox")).text
    await admin.post_form("/admin/outbox/retry", {"all": "1"})
    assert await _state(db, failed) == PENDING and woken == [1]
    assert await _state(db, waiting) == PENDING


async def test_a_retry_to_a_suppressed_address_says_so(
    admin: Any, db: Database, woken: list[int]
) -> None:
    failed = await make_row(db, "gone@customer.example", outcome=REFUSED)
    async with db.transaction() as conn:
        await outbox_repo.suppress(conn, "gone@customer.example", "550 5.1.1 no such user",
                                   utcnow() + timedelta(days=30))  # fmt: skip
    await admin.post_form("/admin/outbox/retry", {"id": str(failed)})
    page = (await admin.get("/admin/outbox")).text
    assert "gone@customer.example is suppressed and will be refused again" in page


async def test_unsuppress(admin: Any, db: Database) -> None:
    async with db.transaction() as conn:
        await outbox_repo.suppress(conn, "Gone@Customer.example", "550 5.1.1 <b>no such user</b>",
                                   utcnow() + timedelta(days=30))  # fmt: skip
    page = (await admin.get("/admin/outbox")).text
    assert "gone@customer.example" in page and "&lt;b&gt;no such user" in page
    lifted = await admin.post_form("/admin/outbox/unsuppress", {"address": "gone@customer.example"})
    assert lifted.status_code == 303
    async with db.connect() as conn:
        assert (await conn.execute(select(address_suppression))).first() is None
    assert "gone@customer.example: suppression lifted." in (await admin.get("/admin/outbox")).text
    await admin.post_form("/admin/outbox/unsuppress", {"address": "nobody@customer.example"})
    assert "nobody@customer.example: not suppressed" in (await admin.get("/admin/outbox")).text


async def test_failed_state_is_what_is_listed(admin: Any, db: Database) -> None:
    await make_row(db, "pending@customer.example")
    assert "pending@customer.example" not in (await admin.get("/admin/outbox")).text
    assert FAILED == "failed"
