"""Fixtures of the web tests: the app over the test database, agents, signed-in clients.

- `web_app`: `create_app(config, db, clock=clock)` with its lifespan entered (session key
  loaded), served to httpx in the test's own loop through `ASGITransport`.
- `clock`: the app's clock (seconds since the epoch). It starts at the real time and moves
  only when a test calls `clock.advance(seconds)`; session expiry and the login throttle read
  it, so those tests need no sleeping.
- `make_user(login, *, role="agent", queues={"Raw": "rw"}, password=PASSWORD)`: an account
  made as `pytrs users add` makes it; returns the user id. `queues` maps queue names to "rw" or
  "ro"; `role="admin"` adds `rw` on group admin.
- `login(login, password=PASSWORD) -> WebClient`: a client signed in through the login form.
  `await client.post_form(url, data)` adds the session's CSRF token; `client.csrf` is it.
- `make_queue(name, *, group=None) -> int`: a queue in a permission group of its own (named
  after the queue, or `group`, made if missing), so that access to it can differ from the
  seeded queues' (all four share group `users`); returns the queue id.
- `anonymous(*, address="127.0.0.1", headers=…) -> WebClient`: a client not signed in, seen
  by the app as coming from `address`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from starlette.applications import Starlette

from pytrs.config import Config
from pytrs.schema import users_repo
from pytrs.schema.database import Database, utcnow
from pytrs.schema.tables import group_user, permission_groups, queue, users
from pytrs.users.passwords import check
from pytrs.web.app import create_app
from pytrs.web.sessions import COOKIE, Session

PASSWORD = "correct horse battery"
BASE_URL = "http://testserver"


class Clock:
    """A clock that stands still until told to move."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class WebClient(httpx.AsyncClient):
    """An httpx client of the app; knows the session's CSRF token."""

    def __init__(self, app: Starlette, *, address: str = "127.0.0.1", **kwargs: Any) -> None:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        super().__init__(transport=transport, base_url=BASE_URL, **kwargs)
        self.app = app

    @property
    def session(self) -> Session:
        """The session as the cookie holds it now."""
        return self.app.state.session_codec.loads(self.cookies.get(COOKIE, ""))

    @property
    def csrf(self) -> str:
        return self.session.csrf

    async def post_form(self, url: str, data: Mapping[str, str] | None = None) -> httpx.Response:
        """POST a form with the session's CSRF token added."""
        return await self.post(url, data={**(data or {}), "csrf_token": self.csrf})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def web_app(config: Config, db: Database, clock: Clock) -> AsyncIterator[Starlette]:
    app = create_app(config, db, clock=clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
def make_user(db: Database) -> Callable[..., Awaitable[int]]:
    async def make(
        login: str,
        *,
        role: str = "agent",
        queues: Mapping[str, str] | None = None,
        password: str = PASSWORD,
    ) -> int:
        wanted = {"Raw": "rw"} if queues is None else dict(queues)
        new = users_repo.NewUser(
            login=login, email=f"{login}@example.com", pw=_hashed(password),
            first_name=login.capitalize(), last_name="Agent", admin=role == "admin",
            queues=tuple(q for q, key in wanted.items() if key == "rw"),
        )  # fmt: skip
        await users_repo.add(db, new)
        async with db.transaction() as conn:
            user_id = await conn.scalar(select(users.c.id).where(users.c.login == login))
            await _grant_read_only(conn, user_id, [q for q, key in wanted.items() if key == "ro"])
        return int(user_id)

    return make


# Test accounts get real argon2id hashes with the smallest cost: a hash carries its own
# parameters, so the login's verify (the production code path) is then ~1 ms instead of the
# production cost of tens of milliseconds, paid on every one of the suite's hundreds of
# logins. Accounts made by the code under test (users add, passwd) keep the real cost.
_CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@functools.cache
def _hashed(password: str) -> str:
    check(password)
    return _CHEAP.hash(password)


@pytest.fixture
def make_queue(db: Database) -> Callable[..., Awaitable[int]]:
    async def make(name: str, *, group: str | None = None) -> int:
        group_name = group or name.lower()
        now = utcnow()
        audit = {"create_time": now, "create_by": 1, "change_time": now, "change_by": 1}
        async with db.transaction() as conn:
            group_id = await conn.scalar(
                select(permission_groups.c.id).where(permission_groups.c.name == group_name)
            )
            if group_id is None:
                made = await conn.execute(
                    permission_groups.insert()
                    .returning(permission_groups.c.id)
                    .values(name=group_name, valid_id=1)
                )
                group_id = made.scalar_one()
            made = await conn.execute(
                queue.insert()
                .returning(queue.c.id)
                .values(name=name, group_id=group_id, follow_up_id=1, valid_id=1, **audit)
            )
            return int(made.scalar_one())

    return make


async def _grant_read_only(conn: Any, user_id: int, names: list[str]) -> None:
    if not names:
        return
    groups = (await conn.execute(select(queue.c.group_id).where(queue.c.name.in_(names)))).all()
    now = utcnow()
    audit = {"create_time": now, "create_by": 1, "change_time": now, "change_by": 1}
    rows = {g.group_id for g in groups}
    await conn.execute(
        group_user.insert(),
        [{"user_id": user_id, "group_id": g, "permission_key": "ro", **audit} for g in rows],
    )


@pytest.fixture
async def anonymous(web_app: Starlette) -> AsyncIterator[Callable[..., WebClient]]:
    clients: list[WebClient] = []

    def make(*, address: str = "127.0.0.1", **kwargs: Any) -> WebClient:
        client = WebClient(web_app, address=address, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def login(anonymous: Callable[..., WebClient]) -> Callable[..., Awaitable[WebClient]]:
    async def sign_in(login: str, password: str = PASSWORD) -> WebClient:
        client = anonymous()
        await client.get("/login")
        answer = await client.post_form("/login", {"login": login, "password": password})
        assert answer.status_code == 303, answer.text
        return client

    return sign_in
