"""The ticket zoom and its downloads, for every role (both engines)."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pytrs.config import Config
from pytrs.schema.database import Database
from pytrs.web.agents.attachments import content_disposition, safe_content_type, safe_filename
from pytrs.web.agents.mail_frames import frame_document

from ...helpers import add_sla, set_deadlines
from ..zoom_support import (
    Roles,
    article_ids,
    deliver,
    follow_up,
    newest_ticket,
    realistic_mail,
)

Login = Callable[..., Awaitable[Any]]


@pytest.fixture
async def tn(config: Config, db: Database) -> str:
    await deliver(config, db, realistic_mail())
    _id, number = await newest_ticket(db)
    await deliver(config, db, follow_up(number))
    return number


def srcdocs(page: str) -> list[str]:
    """The documents of the page's frames, as the browser reads the attribute."""
    return [html.unescape(m) for m in re.findall(r'<iframe[^>]* srcdoc="([^"]*)"', page)]


async def test_zoom_shows_the_ticket(login: Login, roles: Roles, tn: str, db: Database) -> None:
    client = await login(roles.rw)
    page = await client.get(f"/tickets/{tn}")
    assert page.status_code == 200
    text = page.text
    assert f"[{tn}]" in text and "Printer on fire" in text
    assert text.index("the printer on floor 3") < text.index("It is getting worse.")
    assert "Alice Customer &lt;alice@customer.example&gt;" in text
    # The HTML body in a sandboxed frame: no scripts, no same origin.
    assert re.search(r'<iframe class="mail-frame" sandbox="" ', text)
    [frame] = srcdocs(text)
    assert "<b>floor 3</b>" in frame and 'style="color:#c00"' in frame
    assert 'src="data:image/png;base64,' in frame  # the inline logo
    assert 'data-remote-src="https://images.customer.example/photo.jpg"' in frame
    assert ' src="https://images' not in frame
    assert "Load images" in text
    ticket_id, _ = await newest_ticket(db)
    first, _second = await article_ids(db, ticket_id)
    assert f"/tickets/{tn}/articles/{first}/attachments/2" in text  # the PDF (1 is the logo)
    assert "floor plan.pdf" in text and f"/tickets/{tn}/articles/{first}/raw" in text
    assert "Routing trace" in text and "new_ticket" in text
    assert "NewTicket" in text and "FollowUp" in text
    csp = page.headers["content-security-policy"]
    assert "img-src 'self' data:;" in csp and "script-src 'self'" in csp
    # Actions for an agent who may act.
    for action in ("update", "note", "merge"):
        assert f'action="/tickets/{tn}/{action}"' in text
    assert f'href="/tickets/{tn}/reply"' in text


async def test_zoom_shows_clocks_sla_and_pending_time(
    login: Login, roles: Roles, tn: str, db: Database
) -> None:
    client = await login(roles.rw)
    plain = (await client.get(f"/tickets/{tn}")).text
    assert '<dd class="field-sla">-</dd>' in plain and "Pending until</dt>" not in plain
    assert "escalation-clocks" not in plain
    gold = await add_sla(db, "Gold")
    now = int(time.time())
    await set_deadlines(
        db, tn, sla_id=gold, until_time=4_102_473_600,  # 2100-01-01 09:00 in Berlin
        # Half a minute of slack either way: the page is rendered a moment after `now`, and
        # the clocks show whole minutes.
        escalation_response_time=now - 7200 - 10, escalation_solution_time=now + 3 * 3600 + 330,
    )  # fmt: skip
    text = (await client.get(f"/tickets/{tn}")).text
    assert '<dd class="field-sla">Gold</dd>' in text
    assert '<dd class="field-pending">2100-01-01 09:00 CET</dd>' in text
    clocks = text[text.index('<section class="escalation-clocks') :]
    clocks = clocks[: clocks.index("</section>")]
    assert "First response" in clocks and "Solution" in clocks and "Update" not in clocks
    assert '<span class="escalation overdue">2 h overdue</span>' in clocks
    assert '<span class="escalation">3 h 5 min left</span>' in clocks
    # The change form: the pending time (shown for pending states) and the SLA select.
    assert re.search(r"<option data-pending>pending reminder</option>", text)
    assert 'type="datetime-local" name="pending"' in text and "(Europe/Berlin;" in text
    assert "<option selected>Gold</option>" in text


async def test_load_images_for_one_article(
    login: Login, roles: Roles, tn: str, db: Database
) -> None:
    client = await login(roles.rw)
    ticket_id, _ = await newest_ticket(db)
    first, _ = await article_ids(db, ticket_id)
    page = await client.get(f"/tickets/{tn}", params={"images": str(first)})
    [frame] = srcdocs(page.text)
    assert 'src="https://images.customer.example/photo.jpg"' in frame
    assert "img-src 'self' data: https: http:;" in page.headers["content-security-policy"]
    assert "Load images" not in page.text


@pytest.mark.parametrize(
    ("who", "status", "actions"),
    [("admin", 200, True), ("rw", 200, True), ("ro", 200, False), ("other", 404, False)],
)
async def test_zoom_per_role(
    login: Login, roles: Roles, tn: str, who: str, status: int, actions: bool
) -> None:
    client = await login(getattr(roles, who))
    page = await client.get(f"/tickets/{tn}")
    assert page.status_code == status
    assert (f'action="/tickets/{tn}/note"' in page.text) is actions
    assert (f'href="/tickets/{tn}/reply"' in page.text) is actions
    if status == 404:
        missing = await client.get("/tickets/99999999")
        assert missing.status_code == 404 and missing.text == page.text
        assert "Printer" not in page.text


async def test_logged_out_is_sent_to_login(anonymous: Callable[[], Any], tn: str) -> None:
    for url in (
        f"/tickets/{tn}",
        f"/tickets/{tn}/articles/1/raw",
        f"/tickets/{tn}/articles/1/attachments/1",
    ):
        answer = await anonymous().get(url)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login?next=")


async def test_attachment_download(login: Login, roles: Roles, tn: str, db: Database) -> None:
    client = await login(roles.ro)  # reading is enough
    ticket_id, _ = await newest_ticket(db)
    first, second = await article_ids(db, ticket_id)
    got = await client.get(f"/tickets/{tn}/articles/{first}/attachments/2")
    assert got.status_code == 200 and got.content == b"%PDF-1.4 floor plan"
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"floor plan.pdf\"; filename*=UTF-8''floor%20plan.pdf"
    )
    assert got.headers["x-content-type-options"] == "nosniff"
    logo = await client.get(f"/tickets/{tn}/articles/{first}/attachments/1")
    assert logo.headers["content-type"] == "image/png" and logo.content.startswith(b"\x89PNG")
    for wrong in (
        f"/tickets/{tn}/articles/{first}/attachments/3",
        f"/tickets/{tn}/articles/{first}/attachments/0",
        f"/tickets/{tn}/articles/{second}/attachments/1",
        f"/tickets/{tn}/articles/{first + 1000}/attachments/1",
        f"/tickets/{tn}/articles/99999999999999999999/attachments/1",
    ):
        assert (await client.get(wrong)).status_code == 404, wrong


async def test_raw_mail(login: Login, roles: Roles, tn: str, db: Database) -> None:
    client = await login(roles.admin)
    ticket_id, _ = await newest_ticket(db)
    first, _ = await article_ids(db, ticket_id)
    got = await client.get(f"/tickets/{tn}/articles/{first}/raw")
    assert got.status_code == 200
    assert b"Subject: Printer on fire" in got.content and b"Message-ID: <first@" in got.content
    assert got.headers["content-type"] == "message/rfc822"
    assert got.headers["content-disposition"].startswith(
        f'attachment; filename="ticket-{tn}-article-{first}.eml"'
    )


async def test_no_download_of_another_queue(
    login: Login, roles: Roles, tn: str, db: Database, config: Config
) -> None:
    ticket_id, _ = await newest_ticket(db)
    first, _ = await article_ids(db, ticket_id)
    other = await login(roles.other)
    for url in (
        f"/tickets/{tn}/articles/{first}/attachments/2",
        f"/tickets/{tn}/articles/{first}/raw",
    ):
        assert (await other.get(url)).status_code == 404
    # Nor through a ticket of their own: the article must belong to the ticket of the URL.
    await deliver(
        config,
        db,
        realistic_mail("Quote please", "<sales@customer.example>"),
        to="sales@example.com",
    )
    _sales_id, sales_tn = await newest_ticket(db)
    assert (await other.get(f"/tickets/{sales_tn}")).status_code == 200
    for url in (
        f"/tickets/{sales_tn}/articles/{first}/attachments/2",
        f"/tickets/{sales_tn}/articles/{first}/raw",
    ):
        assert (await other.get(url)).status_code == 404


@pytest.mark.parametrize(
    ("stored", "served"),
    [
        ("application/pdf", "application/pdf"),
        ('text/plain; charset="ISO-8859-1"; name="a.txt"', "text/plain; charset=ISO-8859-1"),
        ("text/html; charset=utf-8", "application/octet-stream"),
        ("image/svg+xml", "application/octet-stream"),
        ("application/xhtml+xml", "application/octet-stream"),
        ("text/xml", "application/octet-stream"),
        ("text/plain\r\nX-Evil: 1", "application/octet-stream"),
        ("", "application/octet-stream"),
        ("IMAGE/PNG", "image/png"),
    ],
)
def test_safe_content_type(stored: str, served: str) -> None:
    assert safe_content_type(stored) == served


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("evil\r\nX-Evil: 1.txt", "evil_X-Evil_ 1.txt"),
        ('<img src=x onerror="alert(1)">.txt', "img src=x onerror=_alert(1)_.txt"),
        ("...", "attachment"),
        ("Préstamo ✓.pdf", "Préstamo ✓.pdf"),
    ],
)
def test_safe_filename(name: str, safe: str) -> None:
    assert safe_filename(name) == safe


def test_content_disposition_has_both_names() -> None:
    assert content_disposition("Préstamo ✓.pdf") == (
        "attachment; filename=\"Pr_stamo _.pdf\"; filename*=UTF-8''Pr%C3%A9stamo%20%E2%9C%93.pdf"
    )


def test_frame_document() -> None:
    safe = (
        '<p>x</p><img src="cid:Logo@X" alt="a"><img src="cid:gone@x">'
        '<img data-remote-src="https://example.org/a.png"><p>data-remote-src="t"</p>'
    )
    images = {"logo@x": ("image/png", b"\x89PNG")}
    blocked = frame_document(safe, images, remote_images=False)
    assert '<img src="data:image/png;base64,iVBORw==" alt="a"><img>' in blocked
    assert 'data-remote-src="https://example.org/a.png"' in blocked
    shown = frame_document(safe, images, remote_images=True)
    assert '<img src="https://example.org/a.png">' in shown
    assert '<p>data-remote-src="t"</p>' in shown  # text is no tag
    assert shown.startswith('<!doctype html><meta charset="utf-8">')


async def test_zoom_shows_the_mails_path_from_its_received_chain(
    login: Login, roles: Roles, config: Config, db: Database
) -> None:
    """The Received chain read into hops (mail-parser's clause parser), oldest first; a line
    it cannot read is shown as written, escaped like everything else."""
    raw = (
        b"Received: from mx.example.com (mx.example.com [192.0.2.10])\r\n"
        b"\tby helpdesk.example.com (Postfix) with ESMTPS id 4Q1AB2cd3e\r\n"
        b"\tfor <support@example.com>; Tue, 3 Mar 2026 10:00:07 +0000 (UTC)\r\n"
        b"Received: from laptop.customer.example ([198.51.100.7])\r\n"
        b"\tby mx.example.com with ESMTPSA id abc123; Tue, 3 Mar 2026 10:00:02 +0000\r\n"
        b"Received: <script>alert(1)</script>\r\n"
        b"From: Alice Customer <alice@customer.example>\r\nTo: support@example.com\r\n"
        b"Subject: Which way did my mail go\r\nMessage-ID: <path-1@customer.example>\r\n"
        b"Date: Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\nHello.\r\n"
    )
    await deliver(config, db, raw)
    _id, number = await newest_ticket(db)
    client = await login(roles.rw)
    page = (await client.get(f"/tickets/{number}")).text
    assert "Path (3 hops)" in page
    assert "<td>laptop.customer.example ([198.51.100.7])</td><td>mx.example.com</td>" in page
    assert "<td>helpdesk.example.com (Postfix)</td><td>ESMTPS</td>" in page
    assert "<td>2026-03-03T10:00:07+00:00</td><td>5 s</td>" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
