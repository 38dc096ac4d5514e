"""Failed logins slowed per account and per client address, capped, cleared by success."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette

from pytrs.config import Config
from pytrs.schema.database import Database
from pytrs.web.app import create_app
from pytrs.web.login import FAILED
from pytrs.web.proxies import Proxies
from pytrs.web.throttle import Throttle

from ..conftest import make_config
from .conftest import PASSWORD, Clock, WebClient


def test_free_failures_then_doubling_delays_up_to_the_cap() -> None:
    throttle = Throttle(free=3, window=900, cap=30)
    now = 1000.0
    for _ in range(3):
        assert throttle.wait("a", now) == 0
        throttle.failed("a", now)
    assert throttle.wait("a", now) == 0  # three free failures
    delays = []
    for _ in range(10):
        throttle.failed("a", now)
        delays.append(throttle.wait("a", now))
        now += delays[-1]
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
    assert throttle.wait("b", now) == 0  # other keys are not affected
    throttle.clear("a")
    assert throttle.wait("a", now) == 0


def test_failures_leave_the_window() -> None:
    throttle = Throttle(free=1, window=60, cap=30)
    throttle.failed("a", 0)
    throttle.failed("a", 1)
    assert throttle.wait("a", 1) == 1
    assert throttle.wait("a", 61) == 0  # the first failure left the window


def test_forgive_takes_back_one_failure() -> None:
    throttle = Throttle(free=0)
    throttle.failed("a", 5)
    throttle.forgive("a", 5)
    throttle.forgive("a", 6)  # nothing recorded then: nothing happens
    assert throttle.wait("a", 5) == 0


def test_the_number_of_keys_is_bounded() -> None:
    throttle = Throttle(free=0, max_keys=100)
    for n in range(1000):
        throttle.failed(f"login{n}", 0)
    assert len(throttle._failures) == 100
    assert throttle.wait("login999", 0) > 0


async def _try(client: WebClient, login: str, password: str) -> Any:
    await client.get("/login")
    return await client.post_form("/login", {"login": login, "password": password})


async def test_an_account_is_slowed_not_locked_and_success_clears_it(
    make_user: Callable[..., Any], anonymous: Any, clock: Clock
) -> None:
    await make_user("alice")
    client = anonymous()
    for _ in range(6):  # five free failures, the sixth asks for a second's wait
        assert FAILED in (await _try(client, "alice", "guess")).text
    slowed = await _try(client, "alice", PASSWORD)  # even the right password waits
    assert slowed.status_code == 429 and slowed.headers["retry-after"] == "1"
    assert "Too many failed logins; try again in 1 seconds." in slowed.text
    # From another address too: the account is what is counted.
    assert (await _try(anonymous(address="10.9.9.9"), "alice", PASSWORD)).status_code == 429
    clock.advance(1)
    assert (await _try(client, "alice", PASSWORD)).status_code == 303
    # The success cleared the account's failures: the next mistake costs nothing.
    other = anonymous()
    assert FAILED in (await _try(other, "alice", "guess")).text
    assert (await _try(other, "alice", PASSWORD)).status_code == 303


async def test_a_burst_of_parallel_guesses_is_counted_as_it_starts(
    make_user: Callable[..., Any], anonymous: Any
) -> None:
    await make_user("alice")
    clients = [anonymous(address=f"198.51.100.{n}") for n in range(20)]
    for client in clients:
        await client.get("/login")
    answers = await asyncio.gather(
        *(c.post_form("/login", {"login": "alice", "password": "guess"}) for c in clients)
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 6 + [429] * 14  # five free guesses, and one more after them


async def test_the_wait_is_capped(
    make_user: Callable[..., Any], anonymous: Any, clock: Clock
) -> None:
    await make_user("alice")
    client = anonymous()
    waits = []
    for _ in range(24):  # 5 free failures, then alternately a failure and a 429
        answer = await _try(client, "alice", "guess")
        if answer.status_code == 429:
            waits.append(int(answer.headers["retry-after"]))
            clock.advance(waits[-1])
    assert waits[:7] == [1, 2, 4, 8, 16, 30, 30]
    assert max(waits) == 30
    clock.advance(30)
    assert (await _try(client, "alice", PASSWORD)).status_code == 303


async def test_one_address_guessing_many_accounts_is_slowed(
    make_user: Callable[..., Any], anonymous: Any
) -> None:
    await make_user("alice")
    attacker = anonymous(address="192.0.2.7")
    for n in range(21):  # twenty free failures per address, each on a fresh login
        assert FAILED in (await _try(attacker, f"guess{n}", "guess")).text
    assert (await _try(attacker, "alice", PASSWORD)).status_code == 429
    # Another address is not affected.
    assert (await _try(anonymous(address="192.0.2.8"), "alice", PASSWORD)).status_code == 303


@pytest.fixture
async def proxied_app(database_settings: dict[str, Any], db: Database, clock: Clock) -> Any:
    config: Config = make_config(
        database_settings, web={"listen": "", "trusted_proxies": ["127.0.0.0/8", "::1"]}
    )
    app: Starlette = create_app(config, db, clock=clock)
    async with app.router.lifespan_context(app):
        yield app


async def test_behind_a_trusted_proxy_the_forwarded_address_counts(
    proxied_app: Starlette, make_user: Callable[..., Any]
) -> None:
    await make_user("alice")

    def via_proxy(client_address: str) -> WebClient:
        headers = {"X-Forwarded-For": f"{client_address}, 127.0.0.2"}
        return WebClient(proxied_app, address="127.0.0.1", headers=headers)

    async with via_proxy("198.51.100.1") as attacker, via_proxy("198.51.100.2") as agent:
        for n in range(21):
            await _try(attacker, f"guess{n}", "guess")
        assert (await _try(attacker, "alice", PASSWORD)).status_code == 429
        assert (await _try(agent, "alice", PASSWORD)).status_code == 303


async def test_secure_cookie_over_https_through_a_trusted_proxy(
    proxied_app: Starlette, make_user: Callable[..., Any]
) -> None:
    await make_user("alice")
    https = {"X-Forwarded-Proto": "https"}
    async with (
        WebClient(proxied_app, address="127.0.0.1", headers=https) as proxied,
        WebClient(proxied_app, address="203.0.113.5", headers=https) as direct,
    ):
        assert "; Secure" in (await proxied.get("/login")).headers["set-cookie"]
        # Anyone else claiming https is not believed.
        assert "Secure" not in (await direct.get("/login")).headers["set-cookie"]


def test_proxies_pick_the_nearest_untrusted_address() -> None:
    proxies = Proxies(["10.0.0.0/8", "::1"])

    def scope(peer: str, forwarded: str = "", proto: str = "", scheme: str = "http") -> Any:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        if proto:
            headers.append((b"x-forwarded-proto", proto.encode()))
        return {"client": (peer, 1), "headers": headers, "scheme": scheme}

    # The client may put anything leftmost; the nearest untrusted hop is what counts.
    assert proxies.client_address(scope("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.9")) == "1.2.3.4"
    assert proxies.client_address(scope("1.2.3.4", "6.6.6.6")) == "1.2.3.4"  # untrusted peer
    assert proxies.client_address(scope("::1", "2001:db8::1")) == "2001:db8::1"
    assert proxies.client_address(scope("10.0.0.1")) == "10.0.0.1"
    assert proxies.is_https(scope("10.0.0.1", proto="https"))
    assert proxies.is_https(scope("10.0.0.1", proto="http, https"))
    assert not proxies.is_https(scope("1.2.3.4", proto="https"))
    assert proxies.is_https(scope("1.2.3.4", scheme="https"))


def test_behind_a_unix_socket_the_local_proxy_names_the_client() -> None:
    # uvicorn gives a unix socket's peer no address: without the proxy's header every client
    # would share one address in the throttle, and one attacker would slow everyone.
    scope = {"client": None, "scheme": "http", "headers": [
        (b"x-forwarded-for", b"198.51.100.7"), (b"x-forwarded-proto", b"https"),
    ]}  # fmt: skip
    on_socket = Proxies([], unix_socket=True)
    assert on_socket.client_address(scope) == "198.51.100.7"
    assert on_socket.is_https(scope)
    on_tcp = Proxies([])  # the same headers from an untrusted TCP peer are not believed
    assert on_tcp.client_address(scope) == "" and not on_tcp.is_https(scope)
