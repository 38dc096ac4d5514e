"""The worked-example resources: /queues (with permissions and open counts, limited to the
agent's queues), a queue's answer templates, and the names of states, priorities and types."""

from __future__ import annotations

from pytrs.config import Config
from pytrs.schema import standard_template_repo
from pytrs.schema.database import Database

from ..zoom_support import Roles, deliver, realistic_mail
from .conftest import ApiClient, MakeToken, check_problem


async def test_queues_of_each_agent(
    api_client: ApiClient, make_token: MakeToken, desk: Roles, db: Database, config: Config
) -> None:
    await deliver(config, db, realistic_mail())  # one open ticket in Support
    by_login = {}
    for login in (desk.admin, desk.rw, desk.ro, desk.other):
        answer = await api_client(await make_token(login, "read")).get("/queues")
        assert answer.status_code == 200, answer.text
        by_login[login] = {q["name"]: q for q in answer.json()}
    assert set(by_login[desk.other]) == {"Sales"}
    assert by_login[desk.other]["Sales"]["permission"] == "rw"
    assert {"Support", "Sales", "Billing"} <= set(by_login[desk.admin])
    assert all(q["permission"] == "rw" for q in by_login[desk.admin].values())
    assert "Sales" not in by_login[desk.rw] and "Sales" not in by_login[desk.ro]
    assert by_login[desk.rw]["Support"] == {**by_login[desk.ro]["Support"], "permission": "rw"}
    assert by_login[desk.ro]["Support"]["permission"] == "ro"
    assert by_login[desk.rw]["Support"]["open_tickets"] == 1
    assert by_login[desk.rw]["Billing"]["open_tickets"] == 0

    support = by_login[desk.rw]["Support"]["id"]
    seller = api_client(await make_token(desk.other, "read"))
    hidden = check_problem(await seller.get(f"/queues/{support}"), 404, "not-found")
    missing = check_problem(await seller.get("/queues/999999"), 404, "not-found")
    assert hidden["detail"].replace(str(support), "N") == missing["detail"].replace("999999", "N")
    reader = api_client(await make_token(desk.ro, "read"))
    assert (await reader.get(f"/queues/{support}")).json() == by_login[desk.ro]["Support"]


async def test_templates_and_names(
    api_client: ApiClient, make_token: MakeToken, desk: Roles, db: Database
) -> None:
    rw = api_client(await make_token(desk.rw, "read"))
    support = next(q["id"] for q in (await rw.get("/queues")).json() if q["name"] == "Support")
    async with db.transaction() as conn:
        for name, valid in (("Thanks", True), ("Old", False)):
            values = standard_template_repo.TemplateValues(
                name=name,
                text=f"{name}, {{customer}}.",
                valid=valid,
                queue_ids=frozenset({support}),
            )
            await standard_template_repo.save(conn, values, by=1)
    answer = await rw.get(f"/queues/{support}/templates")
    assert [t["name"] for t in answer.json()] == ["Thanks"]
    assert answer.json()[0]["text"] == "Thanks, {customer}."
    seller = api_client(await make_token(desk.other, "read"))
    check_problem(await seller.get(f"/queues/{support}/templates"), 404, "not-found")

    states = {s["name"]: s["type"] for s in (await rw.get("/states")).json()}
    assert states["open"] == "open" and states["closed successful"] == "closed"
    assert "merged" not in states
    priorities = [p["name"] for p in (await rw.get("/priorities")).json()]
    assert "3 normal" in priorities and priorities == sorted(priorities)
    types = (await rw.get("/types")).json()
    assert {"name": "Unclassified"} in types
