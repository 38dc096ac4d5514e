"""Idempotency-Key on an idempotent operation (the test-only `POST /api/test/things`, whose
effect is a row it counts): a retry replays the first answer, two concurrent requests with one
key make one effect on both engines, a reused key with another request is refused, and
answers older than a day are forgotten."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import insert, select
from starlette.applications import Starlette

from pytrs.schema.database import Database, utcnow
from pytrs.schema.tables import api_idempotency

from ..zoom_support import Roles
from .conftest import ApiClient, MakeToken, check_problem
from .framework_ops import TEST_URL, mounted, things


@pytest.fixture
async def client(
    api_app: Starlette, api_client: ApiClient, make_token: MakeToken, desk: Roles
) -> httpx.AsyncClient:
    mounted(api_app)
    return api_client(await make_token(desk.rw), base_url=TEST_URL)


async def test_retry_replays_the_first_answer(
    client: httpx.AsyncClient, db: Database, api_app: Starlette
) -> None:
    woken: list[object] = []
    api_app.state.wake_sender = lambda: woken.append(1)
    key = {"Idempotency-Key": "4b1e2c1e-0b9f-4a51-9d0e-3c2b1e6f0a11"}
    first = await client.post("/things", json={"name": "lamp"}, headers=key)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    again = await client.post("/things", json={"name": "lamp"}, headers=key)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await things(db) == [first.json()["key"]]
    assert woken == [1]  # the sender is woken for the effect, not for its replay

    reused = await client.post("/things", json={"name": "chair"}, headers=key)
    check_problem(reused, 422, "idempotency-key-reused")
    other_key = await client.post(
        "/things", json={"name": "lamp"}, headers={"Idempotency-Key": "k2"}
    )
    assert other_key.status_code == 201 and len(await things(db)) == 2
    without = await client.post("/things", json={"name": "lamp"})
    assert without.status_code == 201 and len(await things(db)) == 3


async def test_refused_requests_do_not_use_the_key(client: httpx.AsyncClient, db: Database) -> None:
    for bad in ("", "x" * 256, "tab\tkey", "ü".encode()):
        answer = await client.post("/things", json={"name": "a"}, headers={"Idempotency-Key": bad})
        problem = check_problem(answer, 422, "validation-failed")
        assert problem["errors"] == [
            {
                "location": "header",
                "field": "Idempotency-Key",
                "message": problem["errors"][0]["message"],
            }
        ]
    key = {"Idempotency-Key": "k"}
    check_problem(
        await client.post("/things", json={"name": ""}, headers=key), 422, "validation-failed"
    )
    assert (await client.post("/things", json={"name": "a"}, headers=key)).status_code == 201
    assert len(await things(db)) == 1


async def test_concurrent_requests_make_one_effect(
    client: httpx.AsyncClient, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pytrs.web.api.idempotency")
    key = {"Idempotency-Key": "same-key"}
    body = {"name": "race", "pause": 0.3}  # the first holds its transaction open meanwhile
    answers = await asyncio.gather(
        *(client.post("/things", json=body, headers=key) for _ in range(2))
    )
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    assert sorted(a.headers.get("idempotent-replayed", "") for a in answers) == ["", "true"]
    assert answers[0].json() == answers[1].json()
    assert len(await things(db)) == 1
    # PostgreSQL and MariaDB: both claimed the key, the second waited on it and replays;
    # SQLite: the second waited at BEGIN and found the answer stored.
    assert ("claimed concurrently" in caplog.text) == (not db.is_sqlite)


async def test_old_answers_are_forgotten(
    client: httpx.AsyncClient, db: Database, desk: Roles
) -> None:
    async with db.transaction() as conn:
        user_id = await conn.scalar(select(api_idempotency.c.user_id).limit(1))
        assert user_id is None
    assert (
        await client.post("/things", json={"name": "a"}, headers={"Idempotency-Key": "new"})
    ).status_code == 201
    async with db.transaction() as conn:
        user_id = await conn.scalar(select(api_idempotency.c.user_id))
        await conn.execute(insert(api_idempotency).values(
            user_id=user_id, idempotency_key="old", request_hash="0" * 64, status_code=201,
            response_body="{}", create_time=utcnow() - timedelta(hours=25),
        ))  # fmt: skip
    assert (
        await client.post("/things", json={"name": "b"}, headers={"Idempotency-Key": "newer"})
    ).status_code == 201
    async with db.connect() as conn:
        keys = set(await conn.scalars(select(api_idempotency.c.idempotency_key)))
    assert keys == {"new", "newer"}
