"""In a real browser (headless Chromium): an admin pastes a mail into the filter test bench and
reads each rule's verdict, the control headers and the routing decision. Writes the
screenshot docs/screenshots/filter-bench.png."""

from __future__ import annotations

from typing import Any

from pytrs.config import Config
from pytrs.postmaster.filter_rules import replace_rules
from pytrs.provisioning import provision
from pytrs.schema.database import Database

from ...helpers import make_mail
from ..test_filter_bench import RULES, row_counts
from .conftest import SCREENSHOTS


async def test_admin_pastes_a_mail_and_sees_the_verdicts(
    db: Database, config: Config, make_user: Any, live_server: Any, page: Any, browser_login: Any
) -> None:
    await provision(db, config)
    await replace_rules(db, RULES)
    await make_user("root", role="admin")
    await browser_login(page, live_server, "root")
    before = await row_counts(db)

    await page.goto(live_server.url + "/admin/filters")
    await page.click("text=Test bench")
    mail = make_mail(sender="Boss <boss@vip.example.org>", subject="order 4711: toner")
    await page.fill("#bench-mail", mail.decode())
    await page.click("form.bench button[type=submit]")
    await page.wait_for_selector("table.verdicts")

    verdicts = await page.locator("tr.verdict").all_inner_texts()
    assert [v.split("\t")[0] for v in verdicts] == ["010-vip", "020-order", "030-never"]
    assert "matched" in verdicts[0] and "boss@vip.example.org" in verdicts[0]
    assert "X-PyTRS-Title = Order 4711" in verdicts[1]
    assert "not run" in verdicts[2] and "stopped after 020-order" in verdicts[2]
    control = await page.locator("table.control").inner_text()
    assert "X-PyTRS-Priority\t5 very high" in control
    assert "new ticket in queue Sales" in await page.locator("pre.routing").inner_text()
    assert await page.input_value("#bench-mail") != ""  # the mail stays for another try

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "filter-bench.png"), full_page=True)
    assert await row_counts(db) == before
