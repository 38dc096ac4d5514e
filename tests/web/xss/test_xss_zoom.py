"""The stored-XSS corpus in the ticket zoom, queue view and search, through the ASGI app (both
engines).

Every hostile mail is ingested through the real mail path and its ticket shown to an admin:
the page and each frame's document must hold nothing that runs code, loads a remote address
or leaves the page (`markup.page_problems`), what the mail said must be there escaped, and
every attachment must download harmlessly.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pytrs.config import Config
from pytrs.schema.database import Database
from pytrs.tickets import queries

from ..zoom_support import deliver_many, provision_desk, zoom_config
from . import hostile_mails
from .markup import frame_problems, page_problems

Login = Callable[..., Awaitable[Any]]


@pytest.fixture
def config(database_settings: dict[str, Any]) -> Config:
    return zoom_config(database_settings)


@pytest.fixture
async def ingested(db: Database, config: Config) -> dict[str, str]:
    """Every hostile mail as a ticket: Message-ID → ticket number."""
    await provision_desk(db, config)
    await deliver_many(config, db, [raw for _name, raw in hostile_mails()])
    async with db.connect() as conn:
        page = await queries.list_tickets(conn, queries.TicketFilter(), limit=1000)
        found = {}
        for row in page.rows:
            detail = await queries.ticket_detail(conn, row.tn)
            assert detail is not None
            found[detail.articles[0].message_id] = row.tn
    return found


def test_the_corpus_is_large_enough() -> None:
    assert len(hostile_mails()) >= 20


@pytest.mark.parametrize(
    "markup",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "<base href=//x>",
        '<a href=" javascript:alert(1)">x</a>',
        '<meta http-equiv="refresh" content="0">',
        '<iframe sandbox="allow-scripts" srcdoc="x"></iframe>',
        '<iframe sandbox="" srcdoc="&lt;img src=x onerror=alert(1)&gt;"></iframe>',
        '<iframe sandbox="" srcdoc="&lt;img src=&quot;http://evil.example/t.png&quot;&gt;"></iframe>',
        '<iframe sandbox="" srcdoc="&lt;form action=x&gt;"></iframe>',
    ],
)
def test_the_checker_catches_what_it_looks_for(markup: str) -> None:
    assert page_problems(markup)


async def test_zoom_renders_the_corpus_harmlessly(
    login: Login, make_user: Callable[..., Awaitable[int]], ingested: dict[str, str]
) -> None:
    assert len(ingested) == len(hostile_mails())
    await make_user("boss", role="admin", queues={})
    client = await login("boss")
    for message_id, tn in sorted(ingested.items()):
        for query in ("", "?images=" + await _first_article(client, tn)):
            page = await client.get(f"/tickets/{tn}{query}")
            assert page.status_code == 200, message_id
            problems = page_problems(page.text)
            if query:  # remote images were asked for: only images may load then
                problems = [p for p in problems if "<img src=" not in p]
            assert problems == [], (message_id, problems)
        reply = await client.get(f"/tickets/{tn}/reply")  # the quote and subject prefilled
        assert reply.status_code == 200 and page_problems(reply.text) == [], message_id


# Words the corpus's subjects, bodies and addresses share, so each search lists hostile tickets.
SEARCHES = ("evil", "alert", "script", "evil@evil.example", "img", "svg")


async def test_queue_view_and_search_render_the_corpus_harmlessly(
    login: Login, make_user: Callable[..., Awaitable[int]], ingested: dict[str, str]
) -> None:
    await make_user("boss", role="admin", queues={})
    client = await login("boss")
    listed = await client.get("/?view=all")
    assert listed.status_code == 200
    assert page_problems(listed.text) == []
    assert sum(tn in listed.text for tn in ingested.values()) == len(ingested)
    hits = 0
    for words in SEARCHES:
        found = await client.get("/search", params={"q": words})
        assert found.status_code == 200, words
        assert page_problems(found.text) == [], (words, page_problems(found.text))
        hits += sum(tn in found.text for tn in ingested.values())
    assert hits >= len(ingested)  # the searches did list the hostile tickets


async def _first_article(client: Any, tn: str) -> str:
    page = await client.get(f"/tickets/{tn}")
    found = re.search(r'id="article-(\d+)"', page.text)
    assert found is not None
    return found.group(1)


async def test_what_the_mail_said_is_shown_escaped(
    login: Login, make_user: Callable[..., Awaitable[int]], ingested: dict[str, str]
) -> None:
    await make_user("boss", role="admin", queues={})
    client = await login("boss")
    subject = await client.get(f"/tickets/{ingested['<13-html-subject@evil.example>']}")
    assert "&lt;svg onload=alert(1)&gt; &#34;&#39;&gt;&lt;script&gt;alert(document.domain)" in (
        subject.text
    )
    names = await client.get(f"/tickets/{ingested['<12-display-name-html@evil.example>']}")
    assert "&#34;&lt;img src=x onerror=alert(1)&gt;&#34; &lt;evil@evil.example&gt;" in names.text
    words = await client.get(f"/tickets/{ingested['<22-encoded-word-tricks@evil.example>']}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in words.text
    plain = await client.get(f"/tickets/{ingested['<25-plain-text-markup@evil.example>']}")
    assert "Hello &lt;script&gt;alert(1)&lt;/script&gt;\n&lt;/pre&gt;&lt;img" in plain.text
    breakout = await client.get(f"/tickets/{ingested['<20-srcdoc-breakout@evil.example>']}")
    [srcdoc] = re.findall(r' srcdoc="([^"]*)"', breakout.text)
    assert "<" not in srcdoc and '"' not in srcdoc  # the whole document stays one attribute
    assert frame_problems(srcdoc) == []


async def test_attachments_download_harmlessly(
    login: Login, make_user: Callable[..., Awaitable[int]], ingested: dict[str, str]
) -> None:
    await make_user("boss", role="admin", queues={})
    client = await login("boss")
    checked = 0
    for tn in ingested.values():
        page = await client.get(f"/tickets/{tn}")
        for url in re.findall(r'href="(/tickets/[^"]+/attachments/\d+)"', page.text):
            got = await client.get(url)
            assert got.status_code == 200, url
            disposition = got.headers["content-disposition"]
            assert disposition.startswith('attachment; filename="')
            name = disposition.split('"')[1]
            assert not re.search(r"[\r\n/\\<>\"]", name) and not name.startswith("."), name
            kind = got.headers["content-type"]
            assert not any(word in kind for word in ("html", "svg", "xml")), (url, kind)
            assert got.headers["x-content-type-options"] == "nosniff"
            checked += 1
    assert checked >= 8
