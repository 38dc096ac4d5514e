"""`/api/v1/filters`: rules created, replaced and deleted through the API as `pytrs filters
import` and the admin pages store them (validated whole, Znuny's rows, the generation raised),
a wrong row named in the 422, and `/filters/test` running the dry run of `pytrs filters test`
on a raw mail given as text, base64 or a file, with a rule not yet saved, changing nothing."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import select

from pytrs.postmaster.filter_rules import replace_rules
from pytrs.postmaster.filters import MatchRow, Rule, SetRow
from pytrs.schema.database import Database
from pytrs.schema.filter_repo import generation, load_rules
from pytrs.schema.tables import postmaster_filter

from ...helpers import make_mail
from ..test_filter_bench import row_counts
from ..zoom_support import Roles

VIP = Rule(
    "010-vip",
    (MatchRow("From", r"EMAILADDRESS:.*@vip\.example\.org"),),
    (SetRow("X-PyTRS-Priority", "5 very high"),),
)
ORDER = {
    "name": "020-order",
    "stop": True,
    "match": [{"header": "Subject", "value": r"order (?P<number>\d+)"}],
    "set": [
        {"header": "X-OTRS-Title", "value": r"Order [**\number**]"},
        {"header": "X-PyTRS-Queue", "value": "Sales"},
    ],
}
ORDER_MAIL = make_mail(subject="Your order 4711", sender="Ann <ann@vip.example.org>")
ADMIN = Roles.admin


@pytest.fixture(autouse=True)
async def rules(db: Database, desk: Any) -> None:
    await replace_rules(db, [VIP])


@pytest.fixture
async def admin(make_token: Any, api_client: Any) -> Any:
    """The desk's administrator, through a token of scope admin."""
    return api_client(await make_token(ADMIN, scope="admin"))


async def _rows(db: Database, name: str) -> list[tuple[str, str, str, int]]:
    f = postmaster_filter.c
    query = select(f.f_type, f.f_key, f.f_value, f.f_stop).where(f.f_name == name).order_by(f.id)
    async with db.connect() as conn:
        return [tuple(r) for r in await conn.execute(query)]  # type: ignore[misc]


async def test_create_then_match_replace_and_delete(admin: Any, db: Database) -> None:
    before = await generation(db)
    created = await admin.post("/filters", json=ORDER)
    assert created.status_code == 201, created.text
    # Stored with the set header under its canonical name, rows in Znuny's order.
    assert created.json()["set"] == [
        {"header": "X-PyTRS-Queue", "value": "Sales"},
        {"header": "X-PyTRS-Title", "value": r"Order [**\number**]"},
    ]
    assert created.json()["warnings"] == []
    assert await generation(db) == before + 1
    assert await _rows(db, "020-order") == [
        ("Match", "Subject", r"order (?P<number>\d+)", 1),
        ("Set", "X-PyTRS-Title", r"Order [**\number**]", 1),
        ("Set", "X-PyTRS-Queue", "Sales", 1),
    ]
    listed = (await admin.get("/filters")).json()
    assert [r["name"] for r in listed] == ["010-vip", "020-order"]
    assert (await admin.get("/filters/020-order")).json()["match"][0]["negate"] is False

    tested = await admin.post("/filters/test", json={"mail": ORDER_MAIL.decode()})
    assert tested.status_code == 200, tested.text
    result = tested.json()
    verdicts = {v["rule"]: v for v in result["rules"]}
    assert verdicts["010-vip"]["outcome"] == "matched"
    assert verdicts["020-order"]["matched"] == [{"header": "Subject", "value": "order 4711"}]
    assert result["control"] == {
        "X-PyTRS-Priority": "5 very high",
        "X-PyTRS-Title": "Order 4711",
        "X-PyTRS-Queue": "Sales",
        "X-PyTRS-AttachmentCount": "0",
        "X-PyTRS-AttachmentExists": "no",
    }
    assert result["routing"]["action"] == "new_ticket" and result["routing"]["queue"] == "Sales"

    replaced = await admin.put(
        "/filters/020-order",
        json={"match": [{"header": "Subject", "value": "refund", "negate": True}], "set": []},
    )
    assert replaced.status_code == 200, replaced.text
    assert await _rows(db, "020-order") == [("Match", "Subject", "refund", 0)]
    assert (await admin.delete("/filters/020-order")).status_code == 204
    assert [r.name for r in await load_rules(db)] == ["010-vip"]
    assert await generation(db) == before + 3


async def test_refusals_name_the_wrong_row(admin: Any, db: Database, assert_problem: Any) -> None:
    bad_regex = {
        **ORDER,
        "match": [{"header": "Subject", "value": "ok"}, {"header": "From", "value": "(?<=x)y"}],
    }
    problem = assert_problem(await admin.post("/filters", json=bad_regex), 422, "invalid-rule")
    assert [e["field"] for e in problem["errors"]] == ["match.1.value"]
    assert "not a valid RE2 pattern" in problem["errors"][0]["message"]
    bad_set = {**ORDER, "set": [{"header": "X-PyTRS-Queue", "value": "Nowhere"}]}
    problem = assert_problem(await admin.post("/filters", json=bad_set), 422, "invalid-rule")
    assert [e["field"] for e in problem["errors"]] == ["set.0.value"]
    no_match = {**ORDER, "match": []}
    problem = assert_problem(await admin.post("/filters", json=no_match), 422, "invalid-rule")
    assert [e["field"] for e in problem["errors"]] == ["match"]
    unknown_key = {**ORDER, "match": [{"header": "Subject", "value": "x", "not": True}]}
    assert_problem(await admin.post("/filters", json=unknown_key), 422, "validation-failed")
    assert [r.name for r in await load_rules(db)] == ["010-vip"]

    assert_problem(await admin.post("/filters", json={**ORDER, "name": "010-vip"}), 409, "conflict")
    for answer in (
        await admin.get("/filters/nothing"),
        await admin.put("/filters/nothing", json={"match": [{"header": "To", "value": "x"}]}),
        await admin.delete("/filters/nothing"),
    ):
        assert_problem(answer, 404, "not-found")


async def test_the_bench_takes_base64_files_and_unsaved_rules(
    admin: Any, db: Database, assert_problem: Any
) -> None:
    counts = await row_counts(db)
    latin1 = make_mail(subject="order 12").replace(b"fire.", "f\xeeu.".encode("latin-1"))
    encoded = {"mail_base64": base64.b64encode(latin1).decode(), "rule": ORDER}
    tested = (await admin.post("/filters/test", json=encoded)).json()
    assert tested["control"]["X-PyTRS-Queue"] == "Sales"  # the unsaved rule ran …
    assert [r.name for r in await load_rules(db)] == ["010-vip"]  # … and was not saved
    uploaded = await admin.post(
        "/filters/test",
        data={"recipient": "billing@example.com", "rule": json.dumps({**ORDER, "stop": False})},
        files={"attachments": ("mail.eml", make_mail(subject="hello", to="x@example.net"))},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["routing"]["queue"] == "Billing"
    assert [r["outcome"] for r in uploaded.json()["rules"]] == ["not matched", "not matched"]
    assert await row_counts(db) == counts  # a dry run changes nothing

    for body in (
        {},
        {"mail": "x", "mail_base64": "eA=="},
        {"mail": " \n"},
        {"mail_base64": "not base64!"},
    ):
        assert_problem(await admin.post("/filters/test", json=body), 422, "invalid-mail")
    bad_rule = {
        "mail": ORDER_MAIL.decode(),
        "rule": {**ORDER, "match": [{"header": "Subject", "value": "a{1001}"}]},
    }
    problem = assert_problem(await admin.post("/filters/test", json=bad_rule), 422, "invalid-rule")
    assert [e["field"] for e in problem["errors"]] == ["rule.match.0.value"]
