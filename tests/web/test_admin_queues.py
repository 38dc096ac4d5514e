"""`/admin/queues` and `/admin/addresses`: rows written, the configuration's rules applied,
provisioned rows left alone, and the address book's generation raised for running daemons."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

from pytrs.config import Config
from pytrs.provisioning import provision
from pytrs.schema import generations
from pytrs.schema.database import Database
from pytrs.schema.tables import queue, system_address

NEW_QUEUE = {"name": "Leads", "group_id": "1", "follow_up": "reject", "system_address_id": "",
             "comments": "from the fair", "valid": "1"}  # fmt: skip


@pytest.fixture
async def admin(make_user: Callable[..., Awaitable[int]], login: Any) -> Any:
    await make_user("root", role="admin")
    return await login("root")


async def _generation(db: Database) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(select(generations.value(generations.ADDRESSES))))


async def _queue(db: Database, name: str) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(select(queue).where(queue.c.name == name))).first()


async def test_create_and_edit_a_queue(admin: Any, db: Database) -> None:
    before = await _generation(db)
    created = await admin.post_form("/admin/queues", NEW_QUEUE)
    assert created.status_code == 303 and created.headers["location"] == "/admin/queues"
    row = await _queue(db, "Leads")
    assert (row.group_id, row.follow_up_id, row.comments, row.valid_id) == (
        1,
        2,
        "from the fair",
        1,
    )
    assert row.create_by == row.change_by != 1  # the admin, not the system user
    assert await _generation(db) == before + 1
    listing = (await admin.get("/admin/queues")).text
    assert "Queue Leads created." in listing and "from the fair" not in listing
    edited = await admin.post_form(
        f"/admin/queues/{row.id}", {**NEW_QUEUE, "follow_up": "new_ticket", "valid": ""}
    )
    assert edited.status_code == 303
    row = await _queue(db, "Leads")
    assert (row.follow_up_id, row.valid_id) == (3, 2)
    assert await _generation(db) == before + 2


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"name": "  "}, "queue.name: must not be empty"),
        ({"follow_up": "sometimes"}, "queue.follow_up: must be one of"),
        ({"name": "Raw"}, "Raw: a queue of that name exists"),
        ({"name": "x" * 201}, "queue.name: longer than 200 characters"),
        ({"group_id": "999"}, "no such group: 999"),
        ({"group_id": "abc"}, "queue.group: choose a group"),
        ({"system_address_id": "999"}, "no such system address: 999"),
    ],
)
async def test_a_bad_queue_is_refused_in_one_line(
    admin: Any, db: Database, change: dict[str, str], error: str
) -> None:
    refused = await admin.post_form("/admin/queues", {**NEW_QUEUE, **change})
    assert refused.status_code == 400
    assert f'role="alert">{error}' in refused.text.replace("&#39;", "'")
    assert await _queue(db, "Leads") is None
    assert 'value="from the fair"' in refused.text  # what was typed is kept


async def test_names_are_escaped(admin: Any) -> None:
    assert (
        await admin.post_form("/admin/queues", {**NEW_QUEUE, "name": "<b>Bold</b>"})
    ).is_redirect
    page = (await admin.get("/admin/queues")).text
    assert "&lt;b&gt;Bold&lt;/b&gt;" in page and "<b>Bold</b>" not in page


async def test_provisioned_rows_are_read_only(admin: Any, db: Database, config: Config) -> None:
    await provision(db, config)
    support = await _queue(db, "Support")
    listing = (await admin.get("/admin/queues")).text
    assert "managed by the configuration file" in listing
    assert f'href="/admin/queues/{support.id}"' not in listing
    shown = (await admin.get(f"/admin/queues/{support.id}")).text
    assert (
        "managed by the configuration file" in shown
        and '<form method="post" action="/admin/queues/' not in shown
    )
    refused = await admin.post_form(f"/admin/queues/{support.id}", {**NEW_QUEUE, "name": "Support"})
    assert (
        refused.status_code == 400 and "Support: managed by the configuration file" in refused.text
    )
    assert (await _queue(db, "Support")).follow_up_id == support.follow_up_id
    async with db.connect() as conn:
        address = await conn.scalar(
            select(system_address.c.id).where(system_address.c.value0 == "support@example.com")
        )
    data = {
        "address": "support@example.com",
        "name": "x",
        "queue_id": str(support.id),
        "valid": "1",
    }
    refused = await admin.post_form(f"/admin/addresses/{address}", data)
    assert refused.status_code == 400
    assert "support@example.com: managed by the configuration file" in refused.text
    assert "managed by the configuration file" in (await admin.get("/admin/addresses")).text


async def test_create_and_edit_a_system_address(admin: Any, db: Database) -> None:
    raw = await _queue(db, "Raw")
    before = await _generation(db)
    data = {
        "address": "Help@Example.org",
        "name": "Help desk",
        "queue_id": str(raw.id),
        "valid": "1",
    }
    assert (await admin.post_form("/admin/addresses", data)).status_code == 303
    async with db.connect() as conn:
        row = (
            await conn.execute(
                select(system_address).where(system_address.c.value0 == "help@example.org")
            )
        ).one()
    assert (row.value1, row.queue_id, row.valid_id) == ("Help desk", raw.id, 1)
    assert await _generation(db) == before + 1
    assert "help@example.org" in (await admin.get("/admin/addresses")).text
    edited = await admin.post_form(f"/admin/addresses/{row.id}", {**data, "valid": ""})
    assert edited.status_code == 303
    async with db.connect() as conn:
        valid = await conn.scalar(
            select(system_address.c.valid_id).where(system_address.c.id == row.id)
        )
    assert valid == 2


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"address": "not an address"}, "system_address.address: must be an e-mail address"),
        ({"queue_id": "999"}, "system_address.queue: must not be empty"),
    ],
)
async def test_a_bad_system_address_is_refused(
    admin: Any, db: Database, change: dict[str, str], error: str
) -> None:
    raw = await _queue(db, "Raw")
    data = {"address": "help@example.org", "name": "", "queue_id": str(raw.id), "valid": "1"}
    refused = await admin.post_form("/admin/addresses", {**data, **change})
    assert refused.status_code == 400 and error in refused.text.replace("&#39;", "'")


async def test_an_address_taken_is_refused(admin: Any, db: Database) -> None:
    raw = await _queue(db, "Raw")
    data = {"address": "help@example.org", "name": "", "queue_id": str(raw.id), "valid": "1"}
    assert (await admin.post_form("/admin/addresses", data)).status_code == 303
    again = await admin.post_form("/admin/addresses", {**data, "address": "HELP@example.org"})
    assert again.status_code == 400 and "help@example.org: the address exists" in again.text


async def test_unknown_rows_are_404(admin: Any) -> None:
    for url in ("/admin/queues/9999", "/admin/queues/x", "/admin/addresses/9999"):
        assert (await admin.get(url)).status_code == 404
