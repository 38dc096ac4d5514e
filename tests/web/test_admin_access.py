"""Every admin page of queues, addresses, agents, accounts, outbox and quarantine, by role:
an admin sees it, an agent gets 403, a visitor is sent to the login page; and no form posts
without the session's CSRF token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

PAGES = [
    "/admin", "/admin/queues", "/admin/queues/1", "/admin/addresses", "/admin/agents",
    "/admin/accounts", "/admin/outbox", "/admin/quarantine",
]  # fmt: skip
POSTS = [
    "/admin/queues", "/admin/queues/1", "/admin/addresses", "/admin/agents",
    "/admin/outbox/retry", "/admin/outbox/unsuppress", "/admin/quarantine/1/retry",
    "/admin/quarantine/1/discard",
]  # fmt: skip


@pytest.mark.parametrize("url", PAGES)
async def test_admins_only(
    url: str, make_user: Callable[..., Awaitable[int]], login: Any, anonymous: Any
) -> None:
    await make_user("root", role="admin")
    await make_user("ann")
    admin, agent = await login("root"), await login("ann")
    assert (await admin.get(url)).status_code == 200
    refused = await agent.get(url)
    assert refused.status_code == 403 and "administrators" in refused.text
    visitor = await anonymous().get(url)
    assert visitor.status_code == 303 and visitor.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("url", POSTS)
async def test_posts_need_an_admin_and_the_csrf_token(
    url: str, make_user: Callable[..., Awaitable[int]], login: Any
) -> None:
    await make_user("root", role="admin")
    await make_user("ann")
    admin, agent = await login("root"), await login("ann")
    assert (await admin.post(url, data={"name": "x"})).status_code == 403  # no token
    assert (await agent.post_form(url, {"name": "x"})).status_code == 403


async def test_the_index_links_every_admin_page(
    make_user: Callable[..., Awaitable[int]], login: Any
) -> None:
    await make_user("root", role="admin")
    page = (await (await login("root")).get("/admin")).text
    for path in ("queues", "addresses", "agents", "accounts", "filters", "templates",
                 "responses", "outbox", "quarantine"):  # fmt: skip
        assert f'href="/admin/{path}"' in page
