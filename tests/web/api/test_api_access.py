"""Every operation of the API, as every kind of caller, with real requests.

HOW TO EXTEND: nothing to do for a new operation with the usual path parameters: the test
iterates `registry.operations()`, so an operation is checked as soon as its module is in
`MODULES`, by its declared `access`. What it needs:

- a value for each path parameter: `parameters()` seeds a ticket of queue Support (delivered
  mail with an attachment, and an agent's reply queued in the outbox) and returns values by
  parameter NAME (`tn`, `ticket_id`, `article_id`, `number`, `queue_id`, `inbox_id`,
  `outbox_id`, `filter`/`name`, `login`, `user_id`, `template_id`, `address` (suppressed));
  a new name fails with a message saying to add it there;
- for an operation with a body whose model has required fields, a valid body in `BODIES`
  (operationId → JSON), so that the access check, not the validation, is what answers;
- for a ticket operation identified otherwise than by `tn`, a missing value in `MISSING`.

Then each operation is requested: without a token (401); with a read token if it needs more
(403 insufficient-scope); admin operations as agents of every kind (403 forbidden) and as an
admin (not refused); ticket operations as an agent of another queue (404, exactly the answer
for a ticket that does not exist), as a `ro` agent (403 forbidden for ticket-write), and as
`rw` and admin (not refused); "agent" operations as `rw` and admin (not refused). "Not
refused" is any status but 401/403/404; no answer may be a 5xx.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from pytrs.config import Config
from pytrs.schema import agent_access, filter_repo, outbox_repo, standard_template_repo
from pytrs.schema.database import Database, utcnow
from pytrs.schema.tables import inbox, outbox, queue
from pytrs.tickets import article_reads
from pytrs.tickets.model import Actor
from pytrs.vocabulary.filter_rules import MatchRow, Rule
from pytrs.web.api.operations import Operation
from pytrs.web.api.registry import operations

from ..zoom_support import Roles, article_ids, deliver, newest_ticket, realistic_mail
from .conftest import ApiClient, MakeToken, check_problem

OPERATIONS = operations()
FILTER_NAME = "010-api-access"
# Values naming nothing, for the "like a missing ticket" comparison.
MISSING = {"tn": "9999999999999999", "ticket_id": "999999999", "article_id": "999999999"}
SUPPRESSED = "bounced@customer.example"
# Valid JSON bodies by operationId, for operations whose body has required fields (an entry
# for an operation not registered is simply unused).
BODIES: dict[str, dict[str, Any]] = {
    "create_ticket": {"title": "From the access test", "queue": "Support", "body": "Hello."},
    "merge_ticket": {"into": MISSING["tn"]},
    "link_ticket": {"other": MISSING["tn"]},
    "create_article": {"kind": "note", "body": "A note from the access test."},
    "create_user": {"login": "newcomer", "email": "newcomer@example.com"},
    "set_password": {"password": "a long enough password 1"},
    "create_filter": {"name": "020-access", "match": [{"header": "Subject", "value": "x"}]},
    "replace_filter": {"match": [{"header": "Subject", "value": "y"}]},
    "discard_inbox": {"reason": "set aside by the access test"},
}
_PARAM = re.compile(r"{([a-zA-Z_]\w*)(?::\w+)?}")


async def parameters(db: Database, config: Config, app: Starlette, desk: Roles) -> dict[str, str]:
    """Values of the path parameters, by name (see the module docstring)."""
    await deliver(config, db, realistic_mail())
    ticket_id, tn = await newest_ticket(db)
    first = (await article_ids(db, ticket_id))[0]
    rw = await agent_access.by_login(db, desk.rw)
    ro = await agent_access.by_login(db, desk.ro)
    assert rw is not None and ro is not None
    async with db.transaction() as conn:
        files = await article_reads.attachment_lists(conn, [first])
        await app.state.tickets.reply(
            conn, ticket_id, actor=Actor(rw.id, rw.login, rw.email, rw.name), body="On it."
        )
        template_id = await standard_template_repo.save(
            conn, standard_template_repo.TemplateValues(name="Thanks", text="Thanks."), by=1
        )
        support = await conn.scalar(select(queue.c.id).where(queue.c.name == "Support"))
        inbox_id = await conn.scalar(select(inbox.c.id).order_by(inbox.c.id.desc()))
        outbox_id = await conn.scalar(select(outbox.c.id).order_by(outbox.c.id.desc()))
        await outbox_repo.suppress(
            conn, SUPPRESSED, "550 no such user", utcnow() + timedelta(days=1)
        )
    await filter_repo.replace_rules(db, [Rule(FILTER_NAME, (MatchRow("Subject", "x"),), ())])
    assert inbox_id is not None and outbox_id is not None
    return {
        "tn": tn, "ticket_id": str(ticket_id), "article_id": str(first),
        "number": str(files[first][0].number), "queue_id": str(support),
        "inbox_id": str(inbox_id), "outbox_id": str(outbox_id), "filter": FILTER_NAME,
        "name": FILTER_NAME, "login": desk.ro, "user_id": str(ro.id),
        "template_id": str(template_id), "address": SUPPRESSED,
    }  # fmt: skip


def url_of(op: Operation, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            pytest.fail(
                f"{op.method} {op.path} ({op.name}): no value for path parameter {name!r}; "
                "add it to `parameters()` in tests/web/api/test_api_access.py"
            )
        return values[name]

    return _PARAM.sub(value, op.path)


def body_of(op: Operation) -> dict[str, Any] | None:
    if op.body is None:
        return None
    if op.name in BODIES:
        return BODIES[op.name]
    try:
        op.body.model_validate({})
    except ValueError:
        pytest.fail(f"{op.name}: its body has required fields; add a valid one to BODIES")
    return {}


async def send(client: httpx.AsyncClient, op: Operation, url: str) -> httpx.Response:
    answer = await client.request(op.method, url, json=body_of(op))
    assert answer.status_code < 500, f"{op.method} {url}: {answer.status_code} {answer.text}"
    return answer


def allowed(answer: httpx.Response) -> bool:
    return answer.status_code not in (401, 403, 404)


@pytest.mark.parametrize("op", OPERATIONS, ids=[f"{o.method} {o.path}" for o in OPERATIONS])
async def test_operation_access(
    op: Operation, api_app: Starlette, api_client: ApiClient, make_token: MakeToken,
    desk: Roles, db: Database, config: Config,
) -> None:  # fmt: skip
    values = await parameters(db, config, api_app, desk)
    url = url_of(op, values)
    check_problem(await send(api_client(), op, url), 401, "unauthorized")
    if op.scope != "read":
        weak = api_client(await make_token(desk.admin, "read"))
        check_problem(await send(weak, op, url), 403, "insufficient-scope")
    other, ro, rw = [api_client(await make_token(who)) for who in (desk.other, desk.ro, desk.rw)]
    admin = api_client(await make_token(desk.admin, "admin"))
    if op.access == "admin":
        for client in (other, ro, rw):
            check_problem(await send(client, op, url), 403, "forbidden")
        answer = await send(admin, op, url)
        assert allowed(answer), f"admin refused: {answer.status_code} {answer.text}"
        return
    if op.access in ("ticket-read", "ticket-write"):
        await _ticket_checks(op, values, url, other, ro)
    for name, client in (("rw", rw), ("admin", admin)):
        answer = await send(client, op, url)
        assert allowed(answer), f"{name} refused: {answer.status_code} {answer.text}"


async def _ticket_checks(
    op: Operation, values: dict[str, str], url: str, other: httpx.AsyncClient,
    ro: httpx.AsyncClient,
) -> None:  # fmt: skip
    names = _PARAM.findall(op.path)
    key = next((n for n in names if n in MISSING), None)
    assert key, f"{op.name}: a ticket operation needs a {' or '.join(MISSING)} path parameter"
    missing = check_problem(
        await send(other, op, url_of(op, {**values, key: MISSING[key]})), 404, "not-found"
    )
    hidden = check_problem(await send(other, op, url), 404, "not-found")
    assert (hidden["type"], hidden["detail"]) == (missing["type"], missing["detail"])
    read_only = await send(ro, op, url)
    if op.access == "ticket-write":
        check_problem(read_only, 403, "forbidden")
    else:
        assert allowed(read_only), f"ro refused: {read_only.status_code} {read_only.text}"
