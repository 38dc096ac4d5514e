"""Downloads through the API (both engines): an attachment and the raw mail, with the web
view's safe headers, and the 404 for a number, an article or a ticket out of reach."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pytrs.config import Config
from pytrs.schema.database import Database

from ..zoom_support import PNG
from .tickets_desk import ANNA, BOB, Office, open_office


@pytest.fixture
async def office(
    config: Config,
    db: Database,
    api_app: Any,
    make_user: Callable[..., Awaitable[int]],
    make_queue: Callable[..., Awaitable[int]],
) -> Office:
    return await open_office(config, db, api_app, make_user, make_queue, support=1)


async def test_downloads_are_safe_and_exact(
    office: Office, make_token: Any, api_client: Any
) -> None:
    anna = api_client(await make_token(ANNA, scope="read"))
    [mail] = (await anna.get(f"/tickets/{office.mail}/articles")).json()["items"]
    files = {a["filename"]: a for a in mail["attachments"]}
    base = f"/tickets/{office.mail}/articles/{mail['id']}"
    pdf = await anna.get(f"{base}/attachments/{files['floor plan.pdf']['number']}")
    assert pdf.status_code == 200
    assert pdf.content == b"%PDF-1.4 floor plan"
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == (
        "attachment; filename=\"floor plan.pdf\"; filename*=UTF-8''floor%20plan.pdf"
    )
    assert pdf.headers["x-content-type-options"] == "nosniff"
    logo = next(a for a in mail["attachments"] if a["content_type"].startswith("image/png"))
    image = await anna.get(f"{base}/attachments/{logo['number']}")
    assert image.content == PNG
    raw = await anna.get(f"{base}/raw")
    assert raw.status_code == 200 and raw.headers["content-type"] == "message/rfc822"
    assert b"Message-ID: <first@customer.example>" in raw.content
    assert raw.headers["content-disposition"].startswith("attachment;")
    for missing in (
        f"{base}/attachments/99",
        f"{base}/attachments/0",
        f"/tickets/{office.support[0]}/articles/{mail['id']}/raw",
        f"/tickets/{office.support[0]}/articles/{mail['id']}/attachments/1",
    ):
        answer = await anna.get(missing)
        assert answer.status_code == 404, missing
        assert answer.headers["content-type"] == "application/problem+json"
    bob = api_client(await make_token(BOB, scope="read"))
    assert (await bob.get(f"{base}/raw")).status_code == 404


async def test_an_html_upload_is_served_as_bytes_not_a_page(
    office: Office, make_token: Any, api_client: Any
) -> None:
    anna = api_client(await make_token(ANNA, scope="write"))
    page = b"<html><script>alert(1)</script></html>"
    made = await anna.post(
        "/tickets",
        json={
            "title": "Page",
            "queue": "Support",
            "body": "See the file.",
            "attachments": [
                {
                    "filename": 'evil".html',
                    "content_type": "text/html",
                    "content": base64.b64encode(page).decode(),
                }
            ],
        },
    )
    assert made.status_code == 201, made.text
    tn, article_id = made.json()["tn"], made.json()["article_id"]
    answer = await anna.get(f"/tickets/{tn}/articles/{article_id}/attachments/1")
    assert answer.content == page
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"].startswith('attachment; filename="evil_.html"')
    assert (await anna.get(f"/tickets/{tn}/articles/{article_id}/raw")).status_code == 404
