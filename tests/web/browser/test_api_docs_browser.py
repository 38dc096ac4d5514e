"""The API's documentation pages in a real browser: rendered without scripts of their own,
under the web view's Content-Security-Policy (a blocked resource would fail the test)."""

from __future__ import annotations

from typing import Any

from .conftest import LiveServer


async def test_api_docs_show_each_operation(page: Any, live_server: LiveServer) -> None:
    await page.goto(f"{live_server.url}/api/v1/docs")
    assert await page.title() == "API · pytrs"
    operation = page.locator("section.api-operation#get_queue")
    assert (
        await operation.locator("h3").text_content() == "GET /api/v1/queues/{queue_id} — One queue"
    )
    assert "token scope: read" in await operation.text_content()
    parameters = operation.locator("table.api-fields").first
    assert "queue_id (path)" in await parameters.text_content()
    assert "open_tickets" in await operation.text_content()
    # The side list links to the operation; a problem links to its type's entry.
    await page.click("nav.api-toc a[href='#get_queue']")
    assert page.url.endswith("/api/v1/docs#get_queue")
    async with page.expect_navigation():
        await operation.locator("a[href='/api/v1/problems#not-found']").click()
    assert page.url.endswith("/api/v1/problems#not-found")
    assert "404 Not found" in await page.text_content("dt#not-found")
    # The stylesheet applied under the CSP: the cards have the panel background.
    background = await page.eval_on_selector(
        "section.card", "e => getComputedStyle(e).backgroundColor"
    )
    assert background != "rgba(0, 0, 0, 0)"
