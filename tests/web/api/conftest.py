"""Fixtures of the API tests: the app with the desk's queues and agents, tokens, clients.

- `config`: the zoom tests' configuration (queues Support, Sales, Billing; outbound set up, so
  replies can be composed).
- `desk`: the configuration provisioned, queue Sales in a group of its own, and one agent per
  role (`Roles`: admin "boss", rw "jdoe" and ro "reader" on Support, "seller" rw on Sales).
- `api_app`: the web app (lifespan entered) over that desk.
- `make_token(login, scope="write", *, expires=None) -> str` (async): a token made as
  `pytrs tokens create` makes it (`schema/api_tokens.create`); `expires` a naive UTC datetime.
- `api_client(token=None) -> httpx.AsyncClient`: a client of `api_app` with the bearer set,
  base URL http://testserver/api/v1 (so `client.get("/queues")`); closed at teardown.
- `assert_problem(response, status, slug) -> dict`: the response is that problem
  (problem+json, `type` /api/v1/problems#slug, `status`, a `detail`); returns its JSON. Also
  importable from this module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from pytrs.config import Config
from pytrs.schema import agent_access, api_tokens
from pytrs.schema.database import Database, utcnow

from ..zoom_support import Roles, make_roles, provision_desk, zoom_config

API_URL = "http://testserver/api/v1"
MakeToken = Callable[..., Awaitable[str]]
ApiClient = Callable[..., httpx.AsyncClient]


@pytest.fixture
def config(database_settings: dict[str, Any]) -> Config:
    return zoom_config(database_settings)


@pytest.fixture
async def desk(db: Database, config: Config, make_user: Callable[..., Awaitable[int]]) -> Roles:
    await provision_desk(db, config)
    return await make_roles(make_user)


@pytest.fixture
async def api_app(web_app: Starlette, desk: Roles) -> Starlette:
    return web_app


@pytest.fixture
def make_token(db: Database) -> MakeToken:
    async def make(login: str, scope: str = "write", *, expires: datetime | None = None) -> str:
        account = await agent_access.by_login(db, login)
        assert account is not None, f"no agent {login!r}"
        _id, token = await api_tokens.create(
            db, user_id=account.id, name=f"test {scope}", scope=scope, now=utcnow(),
            expires=expires,
        )  # fmt: skip
        return token

    return make


@pytest.fixture
async def api_client(api_app: Starlette) -> AsyncIterator[ApiClient]:
    clients: list[httpx.AsyncClient] = []

    def make(token: str | None = None, *, base_url: str = API_URL) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = httpx.ASGITransport(app=api_app, client=("127.0.0.1", 50000))
        client = httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def check_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """The response's problem JSON, after checking it is the `slug` problem with `status`."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"] == "application/problem+json", response.headers
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"/api/v1/problems#{slug}", problem
    assert problem["status"] == status and problem["title"], problem
    assert problem["detail"] and problem["detail"].endswith("."), problem
    return problem


@pytest.fixture
def assert_problem() -> Callable[[httpx.Response, int, str], dict[str, Any]]:
    return check_problem
