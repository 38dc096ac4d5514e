"""The ops endpoints through the real app (httpx ASGITransport, real database): who may see
them (`[web] metrics_allow`, trusted proxies), where they are served (`[web] metrics_listen`),
and every reason `/readyz` gives for 503 — migrations behind, a database that is gone, a
service that crashed or stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from pytrs.config import Config
from pytrs.runtime.services import ServiceStates, supervise
from pytrs.schema import migrate
from pytrs.schema.database import Database, create_database
from pytrs.web.app import create_app
from pytrs.web.ops import OpsContext, create_ops_app

from ..conftest import TEST_DATABASE_URL, make_config, wait_until
from ..test_outage import TcpRelay
from .conftest import Scrape

OPS = ("/healthz", "/readyz", "/metrics")


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """`client(address, headers)`: httpx clients of the running app, seen as from `address`."""
    async with app.router.lifespan_context(app):

        def client(address: str = "127.0.0.1", **headers: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 50000))
            return httpx.AsyncClient(
                transport=transport, base_url="http://testserver", headers=headers
            )

        yield client


async def _statuses(client: httpx.AsyncClient, paths: tuple[str, ...] = OPS) -> list[int]:
    async with client:
        return [(await client.get(path)).status_code for path in paths]


async def test_outside_a_daemon_the_endpoints_answer(config: Config, db: Database) -> None:
    async with serving(create_app(config, db)) as client, client() as local:
        health = await local.get("/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        ready = await local.get("/readyz")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "ready"
        assert [c["name"] for c in body["checks"]] == ["database", "migrations", "services"]
        assert all(c["ok"] for c in body["checks"])
        assert "not run by a daemon" in body["checks"][2]["reason"]
        assert (await local.get("/static/app.css")).status_code == 200
        scrape = Scrape((await local.get("/metrics")).text)
    # The static file is counted under its mount's template, not its own path.
    http = "pytrs_http_requests_total"
    assert scrape.value(http, route="/static/{path}", method="GET", status="200") >= 1
    assert scrape.value(http, route="/readyz", method="GET", status="200") >= 1
    assert not any("app.css" in str(labels) for _, labels in scrape.samples)


async def test_only_allowed_addresses_see_them(
    database_settings: dict[str, Any], db: Database
) -> None:
    default = make_config(database_settings)
    async with serving(create_app(default, db)) as client:
        assert await _statuses(client("127.0.0.1")) == [200, 200, 200]
        assert await _statuses(client("::1")) == [200, 200, 200]
        assert await _statuses(client("10.1.2.3")) == [404, 404, 404]
        # Refused exactly as a path that does not exist is.
        async with client("10.1.2.3") as outsider:
            refused, absent = await outsider.get("/metrics"), await outsider.get("/nothing")
        assert refused.text == absent.text and "pytrs_" not in refused.text
    behind_proxy = make_config(
        database_settings,
        web={"listen": "", "trusted_proxies": ["127.0.0.1"], "metrics_allow": ["192.0.2.0/24"]},
    )
    async with serving(create_app(behind_proxy, db)) as client:
        forwarded = {"x-forwarded-for": "192.0.2.7"}
        assert await _statuses(client("127.0.0.1", **forwarded)) == [200, 200, 200]
        assert await _statuses(client("127.0.0.1")) == [404, 404, 404]  # the proxy itself
        assert await _statuses(client("127.0.0.1", **{"x-forwarded-for": "203.0.113.5"})) == [
            404, 404, 404,
        ]  # fmt: skip
        # From anyone but a trusted proxy the header is ignored.
        assert await _statuses(client("203.0.113.5", **forwarded)) == [404, 404, 404]


async def test_metrics_listen_takes_them_off_the_main_listener(
    database_settings: dict[str, Any], db: Database
) -> None:
    config = make_config(database_settings, web={"listen": "", "metrics_listen": "127.0.0.1:0"})
    async with serving(create_app(config, db)) as client:
        assert await _statuses(client()) == [404, 404, 404]
        assert await _statuses(client(), ("/login",)) == [200]
    async with serving(create_ops_app(config, db)) as client:
        assert await _statuses(client()) == [200, 200, 200]
        assert await _statuses(client(), ("/login", "/")) == [404, 404]
        assert await _statuses(client("10.1.2.3")) == [404, 404, 404]


async def _readiness(app: Starlette) -> tuple[int, dict[str, Any]]:
    async with serving(app) as client, client() as local:
        answer = await local.get("/readyz")
    return answer.status_code, {c["name"]: c for c in answer.json()["checks"]}


async def test_not_ready_while_migrations_are_behind(config: Config, db: Database) -> None:
    head = migrate.head_revision()
    script = ScriptDirectory.from_config(migrate.alembic_config())
    previous = script.get_revision(head).down_revision
    async with db.transaction() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": previous})
    status, checks = await _readiness(create_app(config, db))
    assert status == 503
    assert checks["database"]["ok"] and not checks["migrations"]["ok"]
    reason = checks["migrations"]["reason"]
    assert f"at {previous}, not at head {head}" in reason and "pytrs db upgrade" in reason
    async with db.transaction() as conn:  # as `pytrs db upgrade` would leave it
        await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    status, checks = await _readiness(create_app(config, db))
    assert status == 200, checks


async def test_not_ready_when_a_service_crashed_or_stopped(config: Config, db: Database) -> None:
    services = ServiceStates()
    crashed = asyncio.Event()
    release = asyncio.Event()

    async def flaky() -> None:
        if not crashed.is_set():
            crashed.set()
            raise RuntimeError("boom\nwith a second line")
        await release.wait()

    task = asyncio.create_task(supervise("inbox-writer", flaky, states=services))
    app = create_app(config, db, ops_context=OpsContext(services))
    await crashed.wait()
    status, checks = await _readiness(app)
    assert status == 503
    assert checks["database"]["ok"] and checks["migrations"]["ok"]
    assert checks["services"]["reason"] == (
        "not every service is running: inbox-writer restarting: crashed with RuntimeError: boom"
    )
    scrape = await _scrape(app)
    assert scrape.value("pytrs_service_up", service="inbox-writer") == 0
    # The supervisor restarts it after its backoff: ready again.
    await wait_until(lambda: _ready(app), within=5)
    assert (await _scrape(app)).value("pytrs_service_up", service="inbox-writer") == 1
    services.stop_all("the daemon is shutting down")
    status, checks = await _readiness(app)
    assert (
        status == 503
        and "inbox-writer stopped: the daemon is shutting down" in (checks["services"]["reason"])
    )
    release.set()
    await task


async def _ready(app: Starlette) -> bool:
    return (await _readiness(app))[0] == 200


async def _scrape(app: Starlette) -> Scrape:
    async with serving(app) as client, client() as local:
        return Scrape((await local.get("/metrics")).text)


@pytest.mark.skipif(
    bool(TEST_DATABASE_URL), reason="a broken SQLite file (a server's test: the next one)"
)
async def test_not_ready_when_the_sqlite_file_is_broken(
    database_settings: dict[str, Any], config: Config, db: Database
) -> None:
    """The database file is gone and a directory stands in its path: each connection (no
    pool here, as in `pytrs deliver`) fails to open it."""
    path = Path(make_url(database_settings["url"]).database or "")
    fresh = create_database(config.database, pool=False, create_missing=False)
    try:
        async with serving(create_app(config, fresh)) as client, client() as local:
            assert (await local.get("/readyz")).status_code == 200
            _break(path)
            answer = await local.get("/readyz")
            assert answer.status_code == 503
            checks = {c["name"]: c for c in answer.json()["checks"]}
            assert checks["database"]["reason"] == (
                "the database cannot be reached: unable to open database file"
            )
            assert checks["migrations"]["reason"] == "not checked: the database does not answer"
            assert Scrape((await local.get("/metrics")).text).value("pytrs_database_up") == 0
            _mend(path)
            assert (await local.get("/readyz")).status_code == 200
    finally:
        await fresh.close()


def _break(path: Path) -> None:
    path.rename(path.with_suffix(".away"))
    path.mkdir()


def _mend(path: Path) -> None:
    path.rmdir()
    path.with_suffix(".away").rename(path)


@pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgresql"), reason="a network outage of PostgreSQL"
)
async def test_not_ready_while_postgresql_is_cut_off(
    database_settings: dict[str, Any], config: Config, db: Database
) -> None:
    url = make_url(TEST_DATABASE_URL)
    relay = TcpRelay(url.host or "127.0.0.1", url.port or 5432)
    await relay.start()
    relayed_url = url.set(host="127.0.0.1", port=relay.port)
    relayed = make_config(
        {**database_settings, "url": relayed_url.render_as_string(hide_password=False)}
    )
    through_relay = create_database(relayed.database, create_missing=False)
    try:
        async with serving(create_app(relayed, through_relay)) as client, client() as local:
            assert (await local.get("/readyz")).status_code == 200
            await relay.cut()
            answer = await local.get("/readyz")
            assert answer.status_code == 503
            checks = {c["name"]: c for c in answer.json()["checks"]}
            assert checks["database"]["reason"].startswith("the database cannot be reached: ")
            assert checks["migrations"]["reason"] == "not checked: the database does not answer"
            assert Scrape((await local.get("/metrics")).text).value("pytrs_database_up") == 0
            await relay.start()

            async def ready() -> bool:
                return (await local.get("/readyz")).status_code == 200

            await wait_until(ready, within=10)
    finally:
        await through_relay.close()
        if relay.server is not None:
            relay.server.close()
            await relay.server.wait_closed()
