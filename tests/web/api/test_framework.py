"""The API framework through real requests: authentication, scopes, validation, bodies, errors.

Test-only operations (`framework_ops.py`, mounted at /api/test) exercise what no real resource
declares yet; the real mount answers the routing errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from pytrs.schema import users_repo
from pytrs.schema.database import Database, utcnow
from pytrs.schema.tables import api_token

from ..conftest import Clock
from ..zoom_support import Roles
from .conftest import ApiClient, MakeToken, check_problem
from .framework_ops import TEST_URL, mounted


@pytest.fixture
def ops(api_app: Starlette, api_client: ApiClient) -> ApiClient:
    """Clients of the test-only operations (at /api/test)."""
    mounted(api_app)

    def make(token: str | None = None) -> httpx.AsyncClient:
        return api_client(token, base_url=TEST_URL)

    return make


async def test_authentication(
    api_app: Starlette, api_client: ApiClient, make_token: MakeToken, desk: Roles, db: Database,
    clock: Clock, login: Callable[..., Awaitable[Any]],
) -> None:  # fmt: skip
    for client in (api_client(), api_client("pytrs_not-a-token"), api_client("x" * 500)):
        answer = await client.get("/queues")
        check_problem(answer, 401, "unauthorized")
        assert answer.headers["www-authenticate"] == "Bearer"
    basic = await api_client().get("/queues", headers={"Authorization": "Basic amRvZTp4"})
    check_problem(basic, 401, "unauthorized")

    token = await make_token(desk.rw, "read")
    assert token.startswith("pytrs_") and len(token) > 40
    async with db.connect() as conn:
        stored = (await conn.execute(select(api_token))).one()
    assert token not in (stored.token_hash, stored.hint) and token.startswith(stored.hint)
    assert stored.last_used_time is None
    good = api_client(token)
    assert (await good.get("/queues")).status_code == 200
    first_use = await _last_used(db)
    assert first_use is not None
    clock.advance(30)  # within a minute: not written again
    assert (await good.get("/queues")).status_code == 200
    assert await _last_used(db) == first_use
    clock.advance(61)
    assert (await good.get("/queues")).status_code == 200
    assert await _last_used(db) > first_use

    # A signed-in browser's cookie authenticates nothing here.
    browser = await login(desk.rw)
    check_problem(await browser.get("/api/v1/queues"), 401, "unauthorized")

    await users_repo.disable(db, desk.rw)
    answer = check_problem(await good.get("/queues"), 401, "unauthorized")
    assert "disabled" in answer["detail"]


async def _last_used(db: Database) -> Any:
    async with db.connect() as conn:
        return await conn.scalar(select(api_token.c.last_used_time))


async def test_expired_and_revoked_tokens(
    api_client: ApiClient, make_token: MakeToken, desk: Roles, db: Database, clock: Clock
) -> None:
    from pytrs.schema import api_tokens
    from pytrs.web.api.auth import naive_utc

    expiring = await make_token(desk.rw, expires=naive_utc(clock()) + timedelta(hours=1))
    client = api_client(expiring)
    assert (await client.get("/states")).status_code == 200
    clock.advance(3601)
    check_problem(await client.get("/states"), 401, "unauthorized")

    revoked = await make_token(desk.rw)
    rows = await api_tokens.listing(db)
    assert await api_tokens.revoke(db, rows[-1].id, now=utcnow())
    check_problem(await api_client(revoked).get("/states"), 401, "unauthorized")
    assert not await api_tokens.revoke(db, 999999, now=utcnow())


async def test_scopes_and_admin(ops: ApiClient, make_token: MakeToken, desk: Roles) -> None:
    read = ops(await make_token(desk.rw, "read"))
    answer = check_problem(
        await read.post("/things", json={"name": "a"}), 403, "insufficient-scope"
    )
    assert "'write'" in answer["detail"] and "--scope write" in answer["detail"]
    assert (await read.get("/echo")).status_code == 200

    agent = ops(await make_token(desk.rw, "admin"))  # never made by the CLI
    check_problem(await agent.patch("/admin/1"), 403, "forbidden")
    admin_write = ops(await make_token(desk.admin, "write"))
    check_problem(await admin_write.patch("/admin/1"), 403, "insufficient-scope")
    admin = ops(await make_token(desk.admin, "admin"))
    done = await admin.patch("/admin/1")
    assert done.status_code == 204 and done.content == b""
    assert (await admin.post("/things", json={"name": "by admin"})).status_code == 201


async def test_query_validation(ops: ApiClient, make_token: MakeToken, desk: Roles) -> None:
    client = ops(await make_token(desk.rw, "read"))
    answer = await client.get("/echo", params=[("tags", "a"), ("tags", "b"), ("flag", "true")])
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "items": [{"limit": 25, "cursor": None, "tags": ["a", "b"], "flag": True,
                   "user": desk.rw, "scope": "read"}],
        "next_cursor": None,
    }  # fmt: skip
    for bad, field in (("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"),
                       ("flag=maybe", "flag"), ("cursor=a%00b", "cursor")):  # fmt: skip
        problem = check_problem(await client.get(f"/echo?{bad}"), 422, "validation-failed")
        assert problem["errors"][0]["location"] == "query", problem
        assert problem["errors"][0]["field"] == field, problem
        assert field in problem["detail"]


async def test_json_bodies(ops: ApiClient, make_token: MakeToken, desk: Roles) -> None:
    client = ops(await make_token(desk.rw))
    made = await client.post("/things", json={"name": "lamp", "labels": ["x"]})
    assert made.status_code == 201, made.text
    assert made.json()["name"] == "lamp" and made.json()["files"] == []
    problem = check_problem(
        await client.post("/things", json={"name": "", "colour": 1}), 422, "validation-failed"
    )
    assert {(e["location"], e["field"]) for e in problem["errors"]} == {
        ("body", "name"),
        ("body", "colour"),
    }
    assert "1 more" in problem["detail"]
    for raw in (
        b"{not json",
        b"[1, 2]",
        b'"\\u0000"',
        b'{"name": "a\\u0000b"}',
        b'{"name": "\\ud800"}',
    ):
        answer = await client.post(
            "/things", content=raw, headers={"content-type": "application/json"}
        )
        check_problem(answer, 422, "validation-failed")
    check_problem(
        await client.post("/things", content=b"name=x", headers={"content-type": "text/plain"}),
        415,
        "unsupported-media-type",
    )
    check_problem(await client.post("/things", content=b"{}"), 415, "unsupported-media-type")
    check_problem(await client.post("/small", json={"text": "x" * 200}), 413, "payload-too-large")
    assert (await client.post("/small", json={"text": "x" * 50})).json() == {"text": "x" * 50}
    assert (await client.post("/small")).json() == {"text": ""}  # no body: the model's defaults
    # JSON is typed: no "1" for a number, no 0 for a boolean, as the document says.
    typed = await client.post("/things", json={"name": "lamp", "pause": "0"})
    assert check_problem(typed, 422, "validation-failed")["errors"][0]["field"] == "pause"
    whole = await client.post("/things", json={"name": "lamp", "count": 2.0, "pause": 0})
    assert whole.json()["count"] == 2  # 2.0 is an integer to JSON Schema, and so here
    fraction = await client.post("/things", json={"name": "lamp", "count": 2.5})
    assert check_problem(fraction, 422, "validation-failed")["errors"][0]["field"] == "count"
    assert made.json()["made"] == "2026-12-07T10:00:00Z"  # stored naive UTC, sent as UTC
    form = await client.post("/small", data={"text": "x"})  # multipart not declared there
    check_problem(form, 415, "unsupported-media-type")


async def test_multipart_bodies(ops: ApiClient, make_token: MakeToken, desk: Roles) -> None:
    client = ops(await make_token(desk.rw))
    files = [("attachments", ("a.txt", b"hello", "text/plain")),
             ("attachments", ("b.bin", b"\x00\x01", "application/octet-stream"))]  # fmt: skip
    answer = await client.post("/things", data={"name": "box", "labels": ["p", "q"]}, files=files)
    assert answer.status_code == 201, answer.text
    assert answer.json()["labels"] == ["p", "q"]
    typed = await client.post(
        "/things", data={"name": "box", "pause": "0", "meta": '{"colour": "red"}'}, files=files
    )  # form fields are text: "0" is a number there; an object travels as JSON
    assert typed.status_code == 201 and typed.json()["colour"] == "red", typed.text
    for given, expected in (("null", None), ("3", 3)):  # "null": none, for a field of no text
        answer = await client.post("/things", data={"name": "null", "count": given}, files=files)
        assert (answer.json()["name"], answer.json()["count"]) == ("null", expected), answer.text
    not_json = await client.post("/things", data={"name": "b", "meta": "red"}, files=files)
    assert check_problem(not_json, 422, "validation-failed")["errors"][0]["field"] == "meta"
    assert answer.json()["files"] == ["a.txt:text/plain:5", "b.bin:application/octet-stream:2"]
    wrong = await client.post("/things", data={"name": "box"}, files=[("file", ("a", b"x"))])
    problem = check_problem(wrong, 422, "validation-failed")
    assert problem["errors"][0]["field"] == "file"
    no_name = await client.post("/things", data={"labels": "p"}, files=files)
    assert check_problem(no_name, 422, "validation-failed")["errors"][0]["field"] == "name"
    urlencoded = await client.post("/things", data={"name": "box"})  # a form without files
    check_problem(urlencoded, 415, "unsupported-media-type")
    huge = b"x" * (32 * 1024 * 1024 + 1)
    answer = await client.post(
        "/things", data={"name": "big"}, files=[("attachments", ("h", huge))]
    )
    check_problem(answer, 413, "payload-too-large")


async def test_errors_are_problems(
    ops: ApiClient, api_client: ApiClient, make_token: MakeToken, desk: Roles,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    client = ops(await make_token(desk.rw, "read"))
    expected = {"merged": (409, "ticket-merged"), "unknown": (422, "unknown-name"),
                "invalid": (422, "invalid-change"), "missing": (404, "not-found"),
                "problem": (409, "conflict")}  # fmt: skip
    for kind, (status, slug) in expected.items():
        problem = check_problem(await client.get(f"/fail/{kind}"), status, slug)
        assert problem["instance"] == f"/api/test/fail/{kind}"
    assert (await client.get("/fail/unknown")).json()["detail"].startswith("No valid state 'nope'")
    assert (await client.get("/fail/problem")).json()["name"] == "x"
    assert (await client.get("/fail/png")).headers["content-type"] == "image/png"
    crash = check_problem(await client.get("/fail/crash"), 500, "internal-error")
    assert "secret" not in crash["detail"] and "Traceback" not in str(crash)
    assert "secret internals" in caplog.text  # the log has it

    api = api_client(await make_token(desk.rw))
    check_problem(await api.get("/no/such/thing"), 404, "not-found")
    check_problem(await api.get("http://testserver/api/nothing"), 404, "not-found")
    check_problem(await api.get("/queues/12345678901"), 422, "validation-failed")
    wrong_method = check_problem(await api.delete("/queues"), 405, "method-not-allowed")
    assert wrong_method["instance"] == "/api/v1/queues"
    assert _allow(await api.delete("/queues")) == {"GET", "HEAD"}
    # One route per path: a 405 lists every method of the path; literal paths go first.
    assert _allow(await client.delete("/admin/1")) == {"GET", "HEAD", "PATCH"}
    assert _allow(await client.put("/fail/special")) == {"POST"}
    writer = ops(await make_token(desk.rw))
    assert (await writer.post("/fail/special")).json() == {"text": "special"}
    assert (await client.get("/fail/special")).headers["content-type"] == "image/png"


def _allow(answer: httpx.Response) -> set[str]:
    check_problem(answer, 405, "method-not-allowed")
    return {method.strip() for method in answer.headers["allow"].split(",")}
