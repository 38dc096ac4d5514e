"""Every route of the web app, classified by who may use it, and checked with real requests.

HOW TO EXTEND: a new route (or a new method on a route) makes `test_every_route_is_classified`
fail until it has an entry in `TABLE` below: `Entry(path, method, ACCESS)` with `path` exactly
as the route declares it (`route.path`, convertors included, e.g. "/tickets/{tn}") and one of
the access classes:

- PUBLIC: anyone, signed in or not (login page, logout, static files);
- AGENT: any signed-in agent; signed-out → 303 to /login;
- TICKET_READ: an agent who may read the ticket's queue (`ro`, `rw`, admin); an agent of
  another queue gets the same 404 page as for a ticket that does not exist;
- TICKET_WRITE: `rw` and admins; `ro` gets 403, an agent of another queue the 404 page;
- ADMIN: administrators; agents get 403.

Path parameters are filled in by `PARAMETERS` ({tn}, {article_id}, {number}, {template_id},
{path}); add one there for a new parameter name. A POST gets `data` (the CSRF token is added,
so that the permission check, not the CSRF check, is what refuses) and a GET may get `query`.
Then, for each entry, the requests are made as: signed out, an agent of another queue (Sales),
a `ro` agent of the ticket's queue, a `rw` agent of it, and an admin (in that order, so an
admin's POST that deletes something comes last).

The JSON API's mount (/api/v1) is not walked here: its operations are declared with their
access (`pytrs/web/api/`) and tests/web/api/test_api_access.py checks every one of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from pytrs.config import Config
from pytrs.schema import agent_access, standard_template_repo
from pytrs.schema.database import Database
from pytrs.tickets import article_reads

from .zoom_support import (
    Roles,
    article_ids,
    deliver,
    make_roles,
    newest_ticket,
    provision_desk,
    realistic_mail,
    zoom_config,
)

PUBLIC, AGENT, TICKET_READ, TICKET_WRITE, ADMIN = (
    "public", "agent", "agent-ticket-read", "agent-ticket-write", "admin",
)  # fmt: skip
MISSING_TN = "9999999999999999"  # a ticket number no test ticket has
API_MOUNT = "/api/v1"


@dataclass(frozen=True)
class Entry:
    path: str  # the route's own path pattern (`route.path`), or a mount's path + "/{path}"
    method: str
    access: str
    data: Mapping[str, str] = field(default_factory=dict)  # form fields of a POST
    query: str = ""  # added to a GET's URL

    @property
    def key(self) -> tuple[str, str]:
        return (self.path, self.method)


_ARTICLE = "/tickets/{tn}/articles/{article_id:int}"
_TEMPLATE = "/admin/templates/{template_id:int}"
TABLE: list[Entry] = [
    # foundation
    Entry("/login", "GET", PUBLIC),
    Entry("/login", "POST", PUBLIC, {"login": "nobody", "password": "wrong"}),
    Entry("/logout", "POST", PUBLIC),
    Entry("/static/{path}", "GET", PUBLIC),
    # queue view and search
    Entry("/", "GET", AGENT),
    Entry("/search", "GET", AGENT, query="q=printer"),
    # ticket zoom, actions, downloads
    Entry("/tickets/{tn}", "GET", TICKET_READ),
    Entry(_ARTICLE + "/attachments/{number:int}", "GET", TICKET_READ),
    Entry(_ARTICLE + "/raw", "GET", TICKET_READ),
    Entry("/tickets/{tn}/reply", "GET", TICKET_WRITE),
    Entry("/tickets/{tn}/reply", "POST", TICKET_WRITE, {"body": ""}),
    Entry("/tickets/{tn}/note", "POST", TICKET_WRITE, {"body": ""}),
    Entry("/tickets/{tn}/update", "POST", TICKET_WRITE, {}),
    Entry("/tickets/{tn}/merge", "POST", TICKET_WRITE, {"into": ""}),
    # answer templates
    Entry("/admin/templates", "GET", ADMIN),
    Entry("/admin/templates/new", "GET", ADMIN),
    Entry("/admin/templates/new", "POST", ADMIN, {"name": "", "text": ""}),
    Entry(_TEMPLATE, "GET", ADMIN),
    Entry(_TEMPLATE, "POST", ADMIN, {"name": "", "text": ""}),
    Entry(_TEMPLATE + "/delete", "POST", ADMIN),
    # postmaster filters and their test bench
    Entry("/admin/filters", "GET", ADMIN),
    Entry("/admin/filters/new", "GET", ADMIN),
    Entry("/admin/filters/new", "POST", ADMIN, {"name": ""}),
    Entry("/admin/filters/edit", "GET", ADMIN, query="name=none"),
    Entry("/admin/filters/edit", "POST", ADMIN, {"name": ""}),
    Entry("/admin/filters/delete", "POST", ADMIN, {"name": "none"}),
    Entry("/admin/filters/test", "GET", ADMIN),
    Entry("/admin/filters/test", "POST", ADMIN, {"mail": ""}),
    # auto-responses
    Entry("/admin/responses", "GET", ADMIN),
    Entry("/admin/responses/new", "GET", ADMIN),
    Entry("/admin/responses/new", "POST", ADMIN, {"name": ""}),
    Entry("/admin/responses/edit", "GET", ADMIN, query="name=none"),
    Entry("/admin/responses/edit", "POST", ADMIN, {"name": ""}),
    # queues, system addresses, agents, mail accounts, outbox, quarantine
    Entry("/admin", "GET", ADMIN),
    Entry("/admin/queues", "GET", ADMIN),
    Entry("/admin/queues", "POST", ADMIN, {"name": ""}),
    Entry("/admin/queues/{queue_id}", "GET", ADMIN),
    Entry("/admin/queues/{queue_id}", "POST", ADMIN, {"name": ""}),
    Entry("/admin/addresses", "GET", ADMIN),
    Entry("/admin/addresses", "POST", ADMIN, {"address": ""}),
    Entry("/admin/addresses/{address_id}", "GET", ADMIN),
    Entry("/admin/addresses/{address_id}", "POST", ADMIN, {"address": ""}),
    Entry("/admin/agents", "GET", ADMIN),
    Entry("/admin/agents", "POST", ADMIN, {"login": ""}),
    Entry("/admin/agents/{user_id}", "GET", ADMIN),
    Entry("/admin/agents/{user_id}", "POST", ADMIN, {"email": ""}),
    Entry("/admin/agents/{user_id}/password", "POST", ADMIN, {"password": ""}),
    Entry("/admin/agents/{user_id}/validity", "POST", ADMIN),
    Entry("/admin/accounts", "GET", ADMIN),
    Entry("/admin/outbox", "GET", ADMIN),
    Entry("/admin/outbox/retry", "POST", ADMIN),
    Entry("/admin/outbox/unsuppress", "POST", ADMIN, {"address": ""}),
    Entry("/admin/quarantine", "GET", ADMIN),
    Entry("/admin/quarantine/{inbox_id}", "GET", ADMIN),
    Entry("/admin/quarantine/{inbox_id}/raw", "GET", ADMIN),
    Entry("/admin/quarantine/{inbox_id}/retry", "POST", ADMIN),
    Entry("/admin/quarantine/{inbox_id}/discard", "POST", ADMIN, {"reason": ""}),
    # ops endpoints: public to `[web] metrics_allow` (loopback, as these clients are); the
    # refusal of other addresses is tests/ops' business
    Entry("/healthz", "GET", PUBLIC),
    Entry("/readyz", "GET", PUBLIC),
    Entry("/metrics", "GET", PUBLIC),
]


def walk(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(path pattern, method) of every route, mounted ones included; HEAD goes with GET."""
    for route in routes:
        if isinstance(route, Route):
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    yield (prefix + route.path, method)
        elif isinstance(route, Mount) and route.path == API_MOUNT:
            continue  # covered by tests/web/api/test_api_access.py
        elif isinstance(route, Mount):
            inner = route.routes
            if inner:
                yield from walk(list(inner), prefix + route.path)
            else:  # an app of its own (static files): any path below the mount
                yield (prefix + route.path + "/{path}", "GET")
        else:
            raise AssertionError(f"a route of unknown kind: {route!r}; classify it here")


def test_every_route_is_classified(web_app: Starlette) -> None:
    found = set(walk(list(web_app.routes)))
    table = {e.key for e in TABLE}
    assert len(table) == len(TABLE), "an entry appears twice in TABLE"
    unclassified = sorted(found - table)
    assert not unclassified, f"routes missing from TABLE (classify them): {unclassified}"
    stale = sorted(table - found)
    assert not stale, f"TABLE entries for routes that no longer exist: {stale}"


# --- the requests -----------------------------------------------------------------------------


@pytest.fixture
def config(database_settings: dict[str, Any]) -> Config:
    return zoom_config(database_settings)


@pytest.fixture
async def desk(db: Database, config: Config, make_user: Callable[..., Awaitable[int]]) -> Roles:
    await provision_desk(db, config)
    return await make_roles(make_user)


async def parameters(db: Database, config: Config) -> dict[str, str]:
    """Values for the path parameters: a ticket of queue Support with an attachment, an
    answer template, a static file."""
    await deliver(config, db, realistic_mail())
    ticket_id, tn = await newest_ticket(db)
    first = (await article_ids(db, ticket_id))[0]
    async with db.transaction() as conn:
        files = await article_reads.attachment_lists(conn, [first])
        template_id = await standard_template_repo.save(
            conn, standard_template_repo.TemplateValues(name="Thanks", text="Thanks."), by=1
        )
    return {
        "tn": tn,
        "article_id:int": str(first),
        "number:int": str(files[first][0].number),
        "template_id:int": str(template_id),
        "path": "app.css",
        "queue_id": "1",
        "address_id": "1",
        # the `ro` agent: the admin's POSTs (reset, disable) hit an agent no other check needs
        "user_id": str(await _user_id(db, Roles.ro)),
        "inbox_id": "999999",  # none: the admin gets the page's own 404, agents their 403
    }


async def _user_id(db: Database, login: str) -> int:
    found = await agent_access.by_login(db, login)
    assert found is not None, login
    return found.id


def url_of(entry: Entry, values: Mapping[str, str]) -> str:
    url = entry.path
    for name, value in values.items():
        url = url.replace("{" + name + "}", value)
    assert "{" not in url, f"no value for a parameter of {entry.path}: add it to `parameters`"
    return url + (f"?{entry.query}" if entry.query and entry.method == "GET" else "")


async def send(client: Any, entry: Entry, url: str) -> httpx.Response:
    if entry.method == "GET":
        answer: httpx.Response = await client.get(url)
    else:
        answer = await client.post(url, data={**entry.data, "csrf_token": client.csrf})
    assert answer.status_code < 500, f"{entry.method} {url}: {answer.status_code}"
    return answer


def to_login(answer: httpx.Response) -> bool:
    return answer.status_code == 303 and answer.headers["location"].startswith("/login")


def allowed(answer: httpx.Response) -> bool:
    """The permission check let the request through (what the page then said is its own
    business: a form refused as empty, a filter rule not found …)."""
    return answer.status_code not in (401, 403, 405) and not to_login(answer)


@pytest.mark.parametrize("entry", TABLE, ids=[f"{e.method} {e.path}" for e in TABLE])
async def test_route_access(
    entry: Entry,
    desk: Roles,
    db: Database,
    config: Config,
    anonymous: Callable[..., Any],
    login: Callable[..., Awaitable[Any]],
) -> None:
    values = await parameters(db, config)
    url = url_of(entry, values)
    stranger = anonymous()
    await stranger.get("/login")  # a CSRF token, as a browser showing the login page has
    other, ro, rw, admin = [await login(who) for who in (desk.other, desk.ro, desk.rw, desk.admin)]
    signed_out = await send(stranger, entry, url)
    if entry.access == PUBLIC:
        for client in (other, ro, rw, admin):
            assert (await send(client, entry, url)).status_code in (200, 303)
        assert signed_out.status_code in (200, 303)
        return
    assert to_login(signed_out), f"signed out: {signed_out.status_code}"
    answers = {name: await send(c, entry, url) for name, c in
               (("other", other), ("ro", ro), ("rw", rw), ("admin", admin))}  # fmt: skip
    statuses = {name: a.status_code for name, a in answers.items()}
    if entry.access == AGENT:
        assert all(allowed(a) for a in answers.values()), statuses
    elif entry.access == ADMIN:
        assert [statuses[n] for n in ("other", "ro", "rw")] == [403] * 3, statuses
        assert allowed(answers["admin"]), statuses
    else:
        missing = await send(other, entry, url_of(entry, {**values, "tn": MISSING_TN}))
        assert statuses["other"] == 404 and answers["other"].text == missing.text, statuses
        assert statuses["ro"] == (200 if entry.access == TICKET_READ else 403), statuses
        for name in ("rw", "admin"):
            assert answers[name].status_code in (200, 303) and not to_login(answers[name]), statuses
