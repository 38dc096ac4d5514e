"""The filter test bench: the dry run of `pytrs filters test` in the browser's form, showing
each rule's verdict and why, the control headers and the routing decision, and changing
nothing in the database (every table's row count is compared)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from pytrs.config import Config
from pytrs.postmaster.filter_rules import replace_rules
from pytrs.postmaster.filters import MatchRow, Rule, SetRow
from pytrs.provisioning import provision
from pytrs.schema.database import Database
from pytrs.schema.filter_repo import load_rules
from pytrs.schema.tables import Base, postmaster_filter
from pytrs.tickets import Actor, ArticleInput, NewTicket, TicketService

from ..helpers import make_mail

Login = Callable[..., Awaitable[Any]]

RULES = [
    Rule(
        "010-vip",
        (MatchRow("From", r"EMAILADDRESS:.*@vip\.example\.org"),),
        (SetRow("X-PyTRS-Priority", "5 very high"),),
    ),
    Rule(
        "020-order",
        (MatchRow("Subject", r"order (?P<number>\d+)"),),
        (SetRow("X-PyTRS-Title", r"Order [**\number**]"), SetRow("X-PyTRS-Queue", "Sales")),
        stop=True,
    ),
    Rule("030-never", (MatchRow("Subject", "^never$"),), (SetRow("X-PyTRS-Queue", "Billing"),)),
]


@pytest.fixture
async def admin(db: Database, config: Config, make_user: Any, login: Login) -> Any:
    await provision(db, config)
    await replace_rules(db, RULES)
    await make_user("root", role="admin")
    return await login("root")


async def row_counts(db: Database) -> dict[str, int]:
    """Rows of every table pytrs has (tickets, articles, history, outbox, inbox, rules …)."""
    async with db.connect() as conn:
        return {
            name: int(await conn.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in Base.metadata.tables.items()
        }


async def make_ticket(config: Config, db: Database, title: str = "Printer on fire") -> str:
    """A ticket in Support from Alice, made through the ticket service; its number."""
    new = NewTicket(
        title=title, queue="Support", customer_user="alice@customer.example",
        customer_id="alice@customer.example",
        article=ArticleInput(
            sender="customer", from_="Alice Customer <alice@customer.example>",
            to="support@example.com", subject=title, body="Hello, the printer is on fire.\n",
            message_id="<printer@customer.example>", raw=b"raw mail",
        ),
    )  # fmt: skip
    # The service composes mail, so it needs the loop-marker key the daemon always has.
    outbound = dataclasses.replace(config.outbound, loop_secret="0123456789abcdef-web-tests")
    service = TicketService.from_config(dataclasses.replace(config, outbound=outbound))
    async with db.transaction() as conn:
        _, tn = await service.create(conn, new, actor=Actor.SYSTEM)
    return tn


async def test_bench_shows_verdicts_control_headers_and_routing_and_changes_nothing(
    admin: Any, db: Database
) -> None:
    mail = make_mail(sender="Boss <boss@vip.example.org>", subject="order 4711 <script>")
    before = await row_counts(db)
    answer = await admin.post_form("/admin/filters/test", {"mail": mail.decode()})
    assert answer.status_code == 200, answer.text
    page = answer.text
    assert 'class="verdict verdict-matched"' in page
    assert "boss@vip.example.org" in page  # the address the EMAILADDRESS row matched
    assert "order 4711" in page  # the text the Subject row matched
    assert "030-never" in page and "stopped after 020-order" in page  # not run, and why
    assert "<th>X-PyTRS-Priority</th><td>5 very high</td>" in page
    assert "<th>X-PyTRS-Title</th><td>Order 4711</td>" in page
    assert "routing: new ticket in queue Sales" in page
    assert "&lt;script&gt;" in page and "<script>" not in page.split("</header>")[1]
    assert await row_counts(db) == before


async def test_a_failing_row_names_the_value_it_saw(admin: Any, db: Database) -> None:
    mail = make_mail(subject="Nothing to see")
    answer = await admin.post_form("/admin/filters/test", {"mail": mail.decode()})
    page = answer.text
    assert 'class="verdict verdict-not-matched"' in page
    assert "Subject &#39;Nothing to see&#39; does not match /order (?P&lt;number&gt;\\d+)/" in page
    assert "routing: new ticket in queue" in page


async def test_follow_up_is_recognised_without_storing_it(
    admin: Any, db: Database, config: Config
) -> None:
    tn = await make_ticket(config, db)
    before = await row_counts(db)
    mail = make_mail(subject=f"Re: [Ticket#{tn}] Printer on fire")
    answer = await admin.post(
        "/admin/filters/test",
        data={"csrf_token": admin.csrf, "recipient": "support@example.com"},
        files={"file": ("reply.eml", mail, "message/rfc822")},
    )
    assert answer.status_code == 200, answer.text
    assert f"routing: follow-up to ticket {tn} (queue Support)" in answer.text
    assert await row_counts(db) == before


async def test_empty_mail_is_one_line(admin: Any) -> None:
    answer = await admin.post_form("/admin/filters/test", {"mail": "  "})
    assert answer.status_code == 400
    assert "Paste a mail or choose a file to test." in answer.text


async def test_stored_rules_that_would_not_work_are_named_instead(admin: Any, db: Database) -> None:
    async with db.transaction() as conn:  # edited by hand: a queue nobody has
        await conn.execute(
            insert(postmaster_filter),
            [
                {"f_name": "040-hand", "f_stop": 0, "f_type": "Match", "f_key": "Subject",
                 "f_value": "x", "f_not": 0},
                {"f_name": "040-hand", "f_stop": 0, "f_type": "Set", "f_key": "X-PyTRS-Queue",
                 "f_value": "Nowhere", "f_not": 0},
            ],
        )  # fmt: skip
    answer = await admin.post_form("/admin/filters/test", {"mail": make_mail().decode()})
    assert answer.status_code == 400
    assert "rule 040-hand: set[0].value: &#39;Nowhere&#39; is no valid queue" in answer.text


async def test_a_rule_being_edited_is_tested_before_it_is_saved(admin: Any, db: Database) -> None:
    before = await row_counts(db)
    data = {
        "original": "030-never", "name": "030-never",
        "match-0-header": "Subject", "match-0-value": "printer",
        "set-0-header": "X-PyTRS-Queue", "set-0-value": "Billing",
        "mail": make_mail(subject="Printer on fire").decode(), "action": "test",
    }  # fmt: skip
    answer = await admin.post_form("/admin/filters/edit", data)
    assert answer.status_code == 200, answer.text
    assert "<th>X-PyTRS-Queue</th><td>Billing</td>" in answer.text
    assert "routing: new ticket in queue Billing" in answer.text
    assert 'value="printer"' in answer.text  # the form still holds the edit
    stored = {r.name: r for r in await load_rules(db)}
    assert stored["030-never"].match == (MatchRow("Subject", "^never$"),)  # not saved
    assert await row_counts(db) == before


async def test_bench_post_needs_csrf(admin: Any) -> None:
    answer = await admin.post("/admin/filters/test", data={"mail": make_mail().decode()})
    assert answer.status_code == 403
