"""The postmaster filter pages: who may use them, rules stored as `pytrs filters import` stores
them (validated the same way, Znuny's rows, the change generation raised), refusals that keep
what the admin typed, CSRF."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

from pytrs.config import Config
from pytrs.postmaster.filter_rules import replace_rules
from pytrs.postmaster.filters import MatchRow, Rule, SetRow
from pytrs.provisioning import provision
from pytrs.schema.database import Database
from pytrs.schema.filter_repo import RulesChanged, generation, load_rules, rules_version
from pytrs.schema.tables import postmaster_filter

Login = Callable[..., Awaitable[Any]]

PAGES = [
    "/admin/filters",
    "/admin/filters/new",
    "/admin/filters/edit?name=010-vip",
    "/admin/filters/test",
    "/admin/responses",
    "/admin/responses/new",
]

VIP = Rule(
    "010-vip",
    (MatchRow("From", r"EMAILADDRESS:.*@vip\.example\.org"),),
    (SetRow("X-PyTRS-Priority", "5 very high"),),
)


@pytest.fixture
async def admin(db: Database, config: Config, make_user: Any, login: Login) -> Any:
    """A signed-in admin over a provisioned database holding the rule 010-vip."""
    await provision(db, config)
    await replace_rules(db, [VIP])
    await make_user("root", role="admin")
    return await login("root")


def form(
    name: str, match: list[tuple[str, str, bool]], sets: list[tuple[str, str]], **kw: str
) -> dict[str, str]:
    data = {"name": name, **kw}
    for i, (header, value, negate) in enumerate(match):
        data |= {f"match-{i}-header": header, f"match-{i}-value": value}
        if negate:
            data[f"match-{i}-not"] = "on"
    for i, (header, value) in enumerate(sets):
        data |= {f"set-{i}-header": header, f"set-{i}-value": value}
    return data


async def stored(db: Database) -> dict[str, Rule]:
    return {rule.name: rule for rule in await load_rules(db)}


# --- who may use the pages ----------------------------------------------------------------


@pytest.mark.parametrize("url", PAGES)
async def test_admin_sees_every_page(admin: Any, url: str) -> None:
    answer = await admin.get(url)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("url", PAGES)
async def test_agent_gets_403(
    db: Database, config: Config, make_user: Any, login: Login, url: str
) -> None:
    await provision(db, config)
    await replace_rules(db, [VIP])
    await make_user("agent1")
    client = await login("agent1")
    assert (await client.get(url)).status_code == 403
    if url.startswith("/admin/filters/new"):
        refused = await client.post_form(url, form("x", [("Subject", "x", False)], []))
        assert refused.status_code == 403
        assert "x" not in await stored(db)


@pytest.mark.parametrize("url", PAGES)
async def test_logged_out_goes_to_login(db: Database, anonymous: Any, url: str) -> None:
    answer = await anonymous().get(url)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


# --- the list and the form ------------------------------------------------------------------


async def test_list_shows_rules_in_run_order(admin: Any, db: Database) -> None:
    later = Rule("020-<b>", (MatchRow("Subject", "x"),), (), stop=True)
    await replace_rules(db, [later, VIP])
    page = (await admin.get("/admin/filters")).text
    assert page.index("010-vip") < page.index("020-&lt;b&gt;")  # name order, escaped
    assert "5 very high" in page and "<td>stop</td>" in page


async def test_create_stores_znuny_rows_and_raises_the_generation(admin: Any, db: Database) -> None:
    before = await rules_version(db)
    data = form(
        "020-order",
        [("Subject", r"order (?P<number>\d+)", False), ("From", "spam", True)],
        [("X-OTRS-Queue", "Sales"), ("X-PyTRS-Title", r"Order [**\number**]")],
        stop="on",
    )
    answer = await admin.post_form("/admin/filters/new", data)
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/filters"
    rule = (await stored(db))["020-order"]
    assert rule.stop
    assert rule.match == (
        MatchRow("From", "spam", True),
        MatchRow("Subject", r"order (?P<number>\d+)"),
    )
    assert set(rule.set) == {
        SetRow("X-PyTRS-Queue", "Sales"),
        SetRow("X-PyTRS-Title", r"Order [**\number**]"),
    }
    async with db.connect() as conn:
        kinds = [r.f_type for r in await conn.execute(
            select(postmaster_filter.c.f_type).where(postmaster_filter.c.f_name == "020-order")
        )]  # fmt: skip
    assert sorted(kinds) == ["Match", "Match", "Set", "Set"]  # one row per match and set row
    after = await rules_version(db)
    assert after[0] == before[0] + 1  # workers reload
    assert "Rule 020-order saved." in (await admin.get("/admin/filters")).text


async def test_edit_and_rename_replace_the_rule(admin: Any, db: Database) -> None:
    page = await admin.get("/admin/filters/edit?name=010-vip")
    assert "vip\\.example\\.org" in page.text
    data = form("015-vip", [("From", r"EMAILADDRESS:.*@vip\.example\.com", False)],
                [("X-PyTRS-Priority", "4 high")], original="010-vip")  # fmt: skip
    answer = await admin.post_form("/admin/filters/edit", data)
    assert answer.status_code == 303, answer.text
    rules = await stored(db)
    assert list(rules) == ["015-vip"]
    assert rules["015-vip"].set == (SetRow("X-PyTRS-Priority", "4 high"),)


async def test_delete(admin: Any, db: Database) -> None:
    answer = await admin.post_form("/admin/filters/delete", {"name": "010-vip"})
    assert answer.status_code == 303
    assert await stored(db) == {}
    assert "Rule 010-vip deleted." in (await admin.get("/admin/filters")).text


async def test_missing_rule_is_404(admin: Any) -> None:
    assert (await admin.get("/admin/filters/edit?name=nope")).status_code == 404


# --- validation as on import ----------------------------------------------------------------


async def test_bad_regex_is_refused_keeping_what_was_typed(admin: Any, db: Database) -> None:
    before = await rules_version(db)
    data = form("030-<broken>", [("Subject", r"(a)\1", False), ("", "", False)],
                [("X-Not-Control", "y")])  # fmt: skip
    answer = await admin.post_form("/admin/filters/new", data)
    assert answer.status_code == 400
    text = answer.text
    assert "rule 030-&lt;broken&gt;: match[0].value: not a valid RE2 pattern" in text
    assert "set[0].header: not a control header" in text
    assert 'value="(a)\\1"' in text and 'value="X-Not-Control"' in text  # kept as typed
    assert 'value="030-&lt;broken&gt;"' in text
    assert "030-<broken>" not in await stored(db)
    assert await rules_version(db) == before


async def test_unknown_queue_in_a_set_row_is_refused(admin: Any, db: Database) -> None:
    data = form("040-q", [("Subject", "x", False)], [("X-PyTRS-Queue", "Nowhere")])
    answer = await admin.post_form("/admin/filters/new", data)
    assert answer.status_code == 400
    assert "rule 040-q: set[0].value: &#39;Nowhere&#39; is no valid queue" in answer.text
    assert "040-q" not in await stored(db)


async def test_rule_without_match_and_duplicate_name_are_refused(admin: Any) -> None:
    answer = await admin.post_form("/admin/filters/new", form("010-vip", [], []))
    assert answer.status_code == 400
    assert "rule 010-vip: name: duplicate rule name" in answer.text
    assert "rule 010-vip: match: a rule needs at least one match row" in answer.text


async def test_catastrophic_pattern_is_stored_and_runs_in_linear_time(
    admin: Any, db: Database
) -> None:
    data = form("050-redos", [("Subject", "(a+)+$", False)], [("X-PyTRS-Priority", "1 very low")])
    assert (await admin.post_form("/admin/filters/new", data)).status_code == 303
    assert "050-redos" in await stored(db)
    mail = "From: someone@example.org\nSubject: " + "a" * 50_000 + "!\n\nbody\n"
    started = time.monotonic()
    answer = await admin.post_form("/admin/filters/test", {"mail": mail})
    assert answer.status_code == 200
    assert time.monotonic() - started < 10  # backtracking would take ages
    assert "050-redos" in answer.text


async def test_post_without_csrf_token_is_refused(admin: Any, db: Database) -> None:
    data = form("060-csrf", [("Subject", "x", False)], [])
    answer = await admin.post("/admin/filters/new", data=data)
    assert answer.status_code == 403
    deleted = await admin.post("/admin/filters/delete", data={"name": "010-vip"})
    assert deleted.status_code == 403
    assert list(await stored(db)) == ["010-vip"]


# --- two admins -------------------------------------------------------------------------------


async def test_a_save_over_someone_elses_change_is_refused_once(admin: Any, db: Database) -> None:
    page = (await admin.get("/admin/filters/edit?name=010-vip")).text
    seen = page.split('name="seen" value="')[1].split('"')[0]
    other = Rule("005-other", (MatchRow("Subject", "other"),), ())
    await replace_rules(db, [VIP, other])  # another admin saves meanwhile
    data = form("010-vip", [("From", "boss", False)], [], original="010-vip", seen=seen)
    answer = await admin.post_form("/admin/filters/edit", data)
    assert answer.status_code == 409
    assert "Someone else changed the filter rules since this form was opened" in answer.text
    assert 'value="boss"' in answer.text  # the edit is kept
    assert (await stored(db))["010-vip"] == VIP
    fresh = answer.text.split('name="seen" value="')[1].split('"')[0]
    data["seen"] = fresh  # saving again keeps this version, and the other admin's rule
    assert (await admin.post_form("/admin/filters/edit", data)).status_code == 303
    rules = await stored(db)
    assert rules["010-vip"].match == (MatchRow("From", "boss"),) and "005-other" in rules


async def test_replace_with_a_stale_generation_changes_nothing(db: Database) -> None:
    seen = await generation(db)
    await replace_rules(db, [VIP])
    with pytest.raises(RulesChanged):
        await replace_rules(db, [], expected=seen)
    assert list(await stored(db)) == ["010-vip"]
    await replace_rules(db, [], expected=await generation(db))
    assert await stored(db) == {}
