"""The search index: written with every article by mail and by the service, filled by migration
0012, read by the search with the agent's queues (both engines)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select, text

from pytrs.schema import migrate
from pytrs.schema.tables import article, queue
from pytrs.tickets import Actor, ArticleInput
from pytrs.tickets.search_index import terms
from pytrs.tickets.search_reads import search, snippet

from .conftest import Desk

MAIL = (
    b"From: Bob Builder <bob@builder.example>\r\nTo: support@example.com\r\n"
    b"Cc: carol@partner.example\r\nSubject: Scaffolding invoice overdue\r\n"
    b"Message-ID: <scaffold-1@builder.example>\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\n"
    b"\r\nThe crane arrives on Tuesday; the pallets stay in the yard.\r\n"
)


async def queue_ids(desk: Desk, *names: str) -> set[int]:
    async with desk.db.connect() as conn:
        found = await conn.execute(select(queue.c.id).where(queue.c.name.in_(names)))
        return set(found.scalars())


async def found(desk: Desk, readable: Collection[int], query: str) -> list[tuple[str, str]]:
    async with desk.db.connect() as conn:
        return [(h.ticket.tn, h.why) for h in await search(conn, readable, query)]


async def index_size(desk: Desk) -> int:
    async with desk.db.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM article_search"))).scalar_one())


async def article_count(desk: Desk) -> int:
    async with desk.db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(article))).scalar_one())


async def test_mail_ingest_indexes_subject_body_and_addresses(desk: Desk) -> None:
    await desk.deliver(MAIL)
    support = await queue_ids(desk, "Support")
    async with desk.db.connect() as conn:
        [hit] = await search(conn, support, "invoice")
    tn = hit.ticket.tn
    assert hit.why == "subject" and hit.subject == "Scaffolding invoice overdue"
    assert "crane" in hit.snippet and hit.sender.startswith("Bob Builder")
    assert await found(desk, support, "pallets yard") == [(tn, "text")]
    assert await found(desk, support, "bob@builder.example") == [(tn, "text")]
    assert await found(desk, support, "CAROL@partner.example") == [(tn, "text")]
    assert await found(desk, support, tn) == [(tn, "number")]
    assert await found(desk, support, "pallets nowhere") == []
    # An address term is looked for in From/To/Cc only, never in the text.
    assert await found(desk, support, "crane@builder.example") == []
    assert await index_size(desk) == await article_count(desk)


async def test_words_inside_addresses_links_and_markup_are_found_on_both_engines(
    desk: Desk,
) -> None:
    # PostgreSQL's parser keeps addresses, host names and URLs whole and drops tag-like text;
    # FTS5 splits them into words. Both must find the same tickets for the same words.
    await desk.deliver(
        b'From: "Mallory" <mallory@evil.example>\r\nTo: support@example.com\r\n'
        b"Subject: Portal login at portal.acme.example\r\n"
        b"Message-ID: <words-1@evil.example>\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\n"
        b"\r\nSee https://wiki.acme.example/printers and <blink>quietly</blink> reboot.\r\n"
    )
    support = await queue_ids(desk, "Support")
    [(tn, _why)] = await found(desk, support, "mallory@evil.example")
    for word, why in (("evil", "text"), ("mallory", "text"), ("acme", "subject"),
                      ("portal", "subject"), ("wiki", "text"), ("printers", "text"),
                      ("blink", "text"), ("quietly", "text")):  # fmt: skip
        assert await found(desk, support, word) == [(tn, why)], word


async def test_service_writes_index_in_the_same_transaction(desk: Desk) -> None:
    ticket_id, tn = await desk.ticket("Toner smudges everywhere")
    jdoe = await desk.agent()
    async with desk.db.transaction() as conn:
        await desk.service.note(conn, ticket_id, actor=jdoe, body="Ordered a fuser kit.")
    async with desk.db.transaction() as conn:
        await desk.service.reply(conn, ticket_id, actor=jdoe, body="The technician is on his way.")
    await rolled_back_note(desk, ticket_id, jdoe)
    support = await queue_ids(desk, "Support")
    assert await found(desk, support, "toner") == [(tn, "subject")]
    assert await found(desk, support, "fuser") == [(tn, "text")]
    assert await found(desk, support, "technician") == [(tn, "text")]
    assert await found(desk, support, "phantom") == []
    assert await index_size(desk) == await article_count(desk) == 3


async def rolled_back_note(desk: Desk, ticket_id: int, actor: Actor) -> None:
    """A note whose transaction fails leaves no index entry behind."""
    try:
        async with desk.db.transaction() as conn:
            await desk.service.note(conn, ticket_id, actor=actor, body="phantom words")
            raise RuntimeError("abort")
    except RuntimeError:
        pass


async def test_search_never_returns_other_queues_tickets(desk: Desk) -> None:
    _id, support_tn = await desk.ticket("Shared word alpha")
    _id, sales_tn = await desk.ticket("Shared word beta", queue="Sales")
    support, sales = await queue_ids(desk, "Support"), await queue_ids(desk, "Sales")
    assert await found(desk, support, "shared") == [(support_tn, "subject")]
    assert await found(desk, sales, "shared") == [(sales_tn, "subject")]
    assert await found(desk, support, sales_tn) == []
    assert await found(desk, support, "alice@customer.example") == [(support_tn, "text")]
    assert await found(desk, set(), "shared") == []
    both = {h for h, _why in await found(desk, support | sales, "shared")}
    assert both == {support_tn, sales_tn}


async def test_ranking_number_then_subject_then_text(desk: Desk) -> None:
    first_id, first_tn = await desk.ticket("Unrelated title")
    _id, subject_tn = await desk.ticket("Gearbox noise")
    jdoe = await desk.agent()
    async with desk.db.transaction() as conn:
        await desk.service.note(conn, first_id, actor=jdoe, body=f"gearbox, see {subject_tn}")
    support = await queue_ids(desk, "Support")
    assert await found(desk, support, "gearbox") == [(subject_tn, "subject"), (first_tn, "text")]
    assert await found(desk, support, f"{first_tn}") == [(first_tn, "number")]


async def test_merge_moves_hits_to_the_target(desk: Desk) -> None:
    source_id, _source_tn = await desk.ticket("Blue screen on boot")
    target_id, target_tn = await desk.ticket("Laptop broken")
    async with desk.db.transaction() as conn:
        await desk.service.merge(conn, source_id, into=target_id, actor=Actor.SYSTEM)
    support = await queue_ids(desk, "Support")
    assert (target_tn, "subject") in await found(desk, support, "blue screen")


async def test_migration_fills_the_index_from_stored_articles(desk: Desk) -> None:
    await desk.deliver(MAIL)
    _id, tn = await desk.ticket("Müller's invoice")
    async with desk.db.engine.begin() as conn:
        await conn.run_sync(lambda c: _downgrade(c, "0011"))
    await migrate.upgrade(desk.db)
    assert await index_size(desk) == await article_count(desk) == 2
    support = await queue_ids(desk, "Support")
    assert [h for h, _ in await found(desk, support, "invoice")] != []
    assert (tn, "subject") in await found(desk, support, "müller")
    assert await migrate.diff_models(desk.db) == []


def _downgrade(conn: object, revision: str) -> None:
    from alembic import command

    command.downgrade(migrate.alembic_config(conn), revision)  # type: ignore[arg-type]


async def test_hostile_query_syntax_is_only_words(desk: Desk) -> None:
    await desk.ticket("Quotes and stars")
    support = await queue_ids(desk, "Support")
    for query in ['"', "'", "a'b", "NEAR(", "* OR", "stars) OR (x", "\\", "@", "a@", "::", "!:A"]:
        async with desk.db.connect() as conn:
            await search(conn, support, query)  # never a syntax error from the engine
    assert len(await found(desk, support, 'st"ars')) == 0
    assert len(await found(desk, support, '"stars"')) == 1


def test_terms_and_snippet() -> None:
    parsed = terms("Invoice  invoice 4711 bob@x.example <carol@y.example>, hello-world")
    assert parsed.words == ("invoice", "4711", "hello", "world")
    assert parsed.addresses == ("bob@x.example", "carol@y.example")
    assert terms("\" ' * ( )").words == ()
    body = "x " * 200 + "the needle is here " + "y " * 200
    found_snippet = snippet(body, terms("needle"))
    assert "needle is here" in found_snippet and found_snippet.startswith("…")
    assert snippet("short text", terms("absent")) == "short text"


async def test_index_accepts_nul_and_huge_bodies(desk: Desk) -> None:
    ticket_id, tn = await desk.ticket("Big log")
    body = "start\x00 marker " + "lorem ipsum " * 20_000 + " tailword"
    async with desk.db.transaction() as conn:
        await desk.service.add_article(
            conn, ticket_id, ArticleInput(subject="log", body=body), actor=Actor.SYSTEM
        )
    support = await queue_ids(desk, "Support")
    assert await found(desk, support, "marker") == [(tn, "text")]
    assert await found(desk, support, "tailword") == []  # past the indexed 64 KB
