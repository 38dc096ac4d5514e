"""`/api/v1/outbox`: outbound mail listed by state a page at a time and shown with each
recipient's answer; failed mail retried as `pytrs outbox retry` does (the sender woken), rows
that are not failed refused; suppressions listed and lifted as `pytrs outbox unsuppress` does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from pytrs.schema import outbox_repo
from pytrs.schema.database import Database, utcnow
from pytrs.schema.outbox_repo import FAILED, PENDING
from pytrs.schema.tables import address_suppression, outbox

from ...outbound.conftest import make_ticket
from ...test_cli_outbox import REFUSED, make_row
from ..zoom_support import Roles

ADMIN = Roles.admin


@pytest.fixture
async def admin(make_token: Any, api_client: Any) -> Any:
    """The desk's administrator, through a token of scope admin."""
    return api_client(await make_token(ADMIN, scope="admin"))


@pytest.fixture
def woken(api_app: Any) -> list[int]:
    calls: list[int] = []
    api_app.state.wake_sender = lambda: calls.append(1)
    return calls


async def _state(db: Database, row_id: int) -> str:
    async with db.connect() as conn:
        return str(await conn.scalar(select(outbox.c.state).where(outbox.c.id == row_id)))


async def _suppress(db: Database, address: str) -> None:
    async with db.transaction() as conn:
        await outbox_repo.suppress(
            conn, address, "550 5.1.1 no such user", utcnow() + timedelta(days=30)
        )


async def test_list_show_and_retry(
    admin: Any, db: Database, woken: list[int], assert_problem: Any
) -> None:
    ticket_id, _ = await make_ticket(db, tn="2026112510000017")
    failed = await make_row(db, "ann@customer.example", outcome=REFUSED, ticket_id=ticket_id)
    other = await make_row(db, "gone@customer.example", outcome=REFUSED)
    waiting = await make_row(db, "bob@customer.example")
    await _suppress(db, "gone@customer.example")

    page = (await admin.get("/outbox", params={"state": "failed", "limit": 1})).json()
    assert [r["id"] for r in page["items"]] == [other]
    rest = (
        await admin.get("/outbox", params={"state": "failed", "cursor": page["next_cursor"]})
    ).json()
    assert [r["id"] for r in rest["items"]] == [failed] and rest["next_cursor"] is None
    assert rest["items"][0]["error"] and "relaying denied" in rest["items"][0]["error"]
    every = (await admin.get("/outbox")).json()["items"]
    assert [r["id"] for r in every] == [waiting, other, failed]
    assert (every[2]["tn"], every[2]["subject"]) == ("2026112510000017", "Re: printer")

    shown = (await admin.get(f"/outbox/{failed}")).json()
    assert (shown["state"], shown["tn"], shown["raw_kept"]) == (FAILED, "2026112510000017", True)
    [result] = shown["results"]
    assert result["address"] == "ann@customer.example" and "relaying denied" in result["reply"]

    retried = await admin.post(f"/outbox/{failed}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["state"] == PENDING and await _state(db, failed) == PENDING
    assert woken == [1]
    again = await admin.post(f"/outbox/{failed}/retry")
    assert "is pending, not failed" in assert_problem(again, 409, "not-failed")["detail"]
    assert_problem(await admin.post("/outbox/424242/retry"), 404, "not-found")
    assert_problem(await admin.get("/outbox/424242"), 404, "not-found")

    # Retry all: the suppressed recipient is named, since the sender would refuse it again.
    everything = (await admin.post("/outbox/retry")).json()
    assert everything == {"requeued": [other], "suppressed": ["gone@customer.example"]}
    assert await _state(db, other) == PENDING and woken == [1, 1]


async def test_suppressions_listed_and_lifted(
    admin: Any, db: Database, assert_problem: Any
) -> None:
    for address in ("c@example.org", "a@example.org", "B@example.org"):
        await _suppress(db, address)
    first = (await admin.get("/outbox/suppressed", params={"limit": 2})).json()
    assert [s["address"] for s in first["items"]] == ["a@example.org", "b@example.org"]
    rest = (await admin.get("/outbox/suppressed", params={"cursor": first["next_cursor"]})).json()
    assert [s["address"] for s in rest["items"]] == ["c@example.org"]
    assert rest["items"][0]["reason"] == "550 5.1.1 no such user"

    assert (await admin.delete("/outbox/suppressed/B@example.org")).status_code == 204
    async with db.connect() as conn:
        left = (await conn.execute(select(address_suppression.c.address))).scalars().all()
    assert sorted(left) == ["a@example.org", "c@example.org"]
    gone = await admin.delete("/outbox/suppressed/b@example.org")
    assert_problem(gone, 404, "not-found")
