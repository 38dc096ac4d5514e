"""`/api/v1/inbox`: the inbox listed by state a page at a time, one row shown with its error
and trace, its raw mail downloaded as message/rfc822; a quarantined mail retried (then
processed into a ticket by a worker) or discarded with its reason, as `pytrs inbox` does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from pytrs.config import Config
from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.schema.database import Database
from pytrs.schema.tables import inbox

from ...helpers import make_mail, tickets
from ..test_admin_quarantine import ERROR, HOSTILE, quarantine
from ..zoom_support import Roles

ADMIN = Roles.admin


@pytest.fixture
async def admin(make_token: Any, api_client: Any) -> Any:
    """The desk's administrator, through a token of scope admin."""
    return api_client(await make_token(ADMIN, scope="admin"))


async def _row(db: Database, row_id: int) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(select(inbox).where(inbox.c.id == row_id))).one()


async def test_list_show_download_and_retry_into_a_ticket(
    admin: Any, db: Database, config: Config
) -> None:
    mails = [make_mail(subject=f"stuck {i}") for i in range(3)]
    held = [await quarantine(db, mail) for mail in mails]
    hostile = await quarantine(db, HOSTILE)
    first = (await admin.get("/inbox", params={"state": "quarantined", "limit": 3})).json()
    assert [r["id"] for r in first["items"]] == [hostile, held[2], held[1]]
    assert first["items"][0]["error"] == ERROR.splitlines()[0]
    assert first["items"][1]["subject"] == "stuck 2" and first["items"][1]["state"] == "quarantined"
    rest = await admin.get(
        "/inbox", params={"state": "quarantined", "cursor": first["next_cursor"]}
    )
    assert [r["id"] for r in rest.json()["items"]] == [held[0]]
    assert rest.json()["next_cursor"] is None
    assert (await admin.get("/inbox", params={"state": "done"})).json()["items"] == []

    shown = (await admin.get(f"/inbox/{hostile}")).json()
    assert (shown["state"], shown["attempts"], shown["error"]) == ("quarantined", 5, ERROR)
    assert shown["raw_kept"] is True and shown["size"] == len(HOSTILE) and shown["tn"] is None
    assert shown["received_at"].endswith("Z")  # stored in UTC, shown with its offset
    raw = await admin.get(f"/inbox/{hostile}/raw")
    assert raw.status_code == 200 and raw.content == HOSTILE
    assert raw.headers["content-type"] == "message/rfc822"
    assert raw.headers["content-disposition"] == f'attachment; filename="inbox-{hostile}.eml"'

    retried = await admin.post(f"/inbox/{held[0]}/retry")
    assert retried.status_code == 200, retried.text
    assert (retried.json()["state"], retried.json()["attempts"]) == ("pending", 0)
    addresses = AddressBook()
    await addresses.reload(db)
    await PostmasterWorker(config, db, addresses).run_once()
    done = (await admin.get(f"/inbox/{held[0]}")).json()
    assert done["state"] == "done" and done["tn"] and done["raw_kept"] is False
    assert [t["title"] for t in await tickets(db)] == ["stuck 0"]
    assert done["trace"] is not None
    # The raw mail now comes from the article's copy.
    assert (await admin.get(f"/inbox/{held[0]}/raw")).content == mails[0]
    listed = (await admin.get("/inbox", params={"state": "done"})).json()["items"]
    assert [(r["id"], r["tn"]) for r in listed] == [(held[0], done["tn"])]


async def test_discard_and_refusals(admin: Any, db: Database, assert_problem: Any) -> None:
    row_id = await quarantine(db, make_mail(subject="spam"))
    blank = await admin.post(f"/inbox/{row_id}/discard", json={"reason": "  \n "})
    assert [e["field"] for e in assert_problem(blank, 422, "validation-failed")["errors"]] == [
        "reason"
    ]
    discarded = await admin.post(f"/inbox/{row_id}/discard", json={"reason": "spam,\n  not mail"})
    assert discarded.status_code == 200, discarded.text
    shown = discarded.json()
    assert (shown["state"], shown["discard_reason"], shown["discarded_by"]) == (
        "discarded",
        "spam, not mail",
        ADMIN,
    )
    stored = await _row(db, row_id)
    assert stored.state == "discarded" and stored.raw is not None and stored.discarded_at

    again = await admin.post(f"/inbox/{row_id}/retry")
    assert (
        "is discarded, not quarantined" in assert_problem(again, 409, "not-quarantined")["detail"]
    )
    twice = await admin.post(f"/inbox/{row_id}/discard", json={"reason": "again"})
    assert_problem(twice, 409, "not-quarantined")
    assert (await _row(db, row_id)).discard_reason == "spam, not mail"
    for answer in (
        await admin.get("/inbox/999999"),
        await admin.get("/inbox/999999/raw"),
        await admin.post("/inbox/999999/retry"),
        await admin.post("/inbox/999999/discard", json={"reason": "x"}),
    ):
        assert_problem(answer, 404, "not-found")
    bad = await admin.get("/inbox", params={"cursor": "nonsense"})
    assert_problem(bad, 422, "validation-failed")
    assert_problem(await admin.get("/inbox", params={"state": "lost"}), 422, "validation-failed")
