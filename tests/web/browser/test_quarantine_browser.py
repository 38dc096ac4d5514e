"""In Chromium: an admin opens the quarantine, reads a quarantined mail, retries it, and sees
it leave the quarantine while the running daemon's worker makes its ticket."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pytrs.schema import inbox_repo
from pytrs.schema.database import Database
from pytrs.schema.tables import inbox, ticket

from ...conftest import wait_until
from ...helpers import make_mail
from ..test_admin_quarantine import quarantine

SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "screenshots" / "admin-quarantine.png"


async def test_admin_retries_a_quarantined_mail(
    db: Database,
    daemon: Any,
    live_server: Any,
    page: Any,
    make_user: Callable[..., Awaitable[int]],
    browser_login: Callable[..., Awaitable[None]],
) -> None:
    mail = make_mail(subject="Printer <b>still</b> on fire", body="It has spread to the fax.\n")
    row_id = await quarantine(db, mail)
    await make_user("root", role="admin")
    await browser_login(page, live_server, "root")

    await page.goto(f"{live_server.url}/admin/quarantine")
    await page.get_by_role("link", name="Printer <b>still</b> on fire").click()
    await page.wait_for_url(f"**/admin/quarantine/{row_id}")
    assert await page.locator("#body").inner_text() == "It has spread to the fax.\n"
    assert "ValueError" in await page.locator("p.error").inner_text()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT), full_page=True)

    await page.locator("#retry").click()
    await page.wait_for_url("**/admin/quarantine")
    assert "queued again" in await page.locator(".flash").inner_text()

    async def processed() -> Any:
        async with db.connect() as conn:
            row = (await conn.execute(select(inbox).where(inbox.c.id == row_id))).one()
        return row if row.state == inbox_repo.DONE else None

    row = await wait_until(processed, within=30)
    await page.reload()
    assert await page.locator("#quarantine-empty").is_visible()
    async with db.connect() as conn:
        title = await conn.scalar(select(ticket.c.title).where(ticket.c.id == row.ticket_id))
    assert title == "Printer <b>still</b> on fire"
