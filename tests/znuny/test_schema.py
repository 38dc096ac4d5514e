"""The Znuny-shaped test database (tests/znuny/): it builds and seeds on PostgreSQL and MariaDB
with Znuny's types and keys, and `populate` writes an installation that satisfies them."""

from __future__ import annotations

import base64
import random
from datetime import datetime

import pytest
from sqlalchemy import and_, func, insert, select, text
from sqlalchemy.exc import IntegrityError

from . import schema as z
from .fixtures import SEEDED_AT, ZnunyDatabase
from .generate import _Generator, _next_ids, date_checksum_number, populate
from .seed import HISTORY_TYPE_IDS

pytestmark = pytest.mark.znuny


async def _count(db: ZnunyDatabase, table: object, *where: object) -> int:
    async with db.engine.connect() as conn:
        query = select(func.count()).select_from(table)  # type: ignore[arg-type]
        if where:
            query = query.where(*where)  # type: ignore[arg-type]
        return int((await conn.execute(query)).scalar_one())


async def _column_types(db: ZnunyDatabase) -> dict[tuple[str, str], tuple[str, int | None]]:
    """(table, column) → (data type, character length) as the server reports them."""
    query = text(
        "SELECT table_name, column_name, data_type, character_maximum_length "
        "FROM information_schema.columns WHERE table_schema = :schema"
    )
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query, {"schema": db.schema})).all()
    return {(t.lower(), c.lower()): (str(d).lower(), n) for t, c, d, n in rows}


async def test_seed_rows_are_znunys(znuny_database: ZnunyDatabase) -> None:
    db = znuny_database
    assert await _count(db, z.ticket_history_type) == 52
    assert await _count(db, z.ticket_state) == 9
    assert await _count(db, z.queue) == 4
    assert await _count(db, z.link_object) == 0  # Znuny creates 'Ticket' on first use
    async with db.engine.connect() as conn:
        queue = (await conn.execute(select(z.queue).where(z.queue.c.name == "Misc"))).one()
        assert (queue.id, queue.system_address_id, queue.salutation_id, queue.signature_id) == (
            4,
            1,
            1,
            1,
        )
        email = (
            await conn.execute(
                select(z.user_preferences.c.preferences_value)
                .join(z.users, z.users.c.id == z.user_preferences.c.user_id)
                .where(
                    z.users.c.login == "root@localhost",
                    z.user_preferences.c.preferences_key == "UserEmail",
                )
            )
        ).scalar_one()
        # A LONGBLOB: bytes on MariaDB, text on PostgreSQL.
        assert email == (b"root@localhost" if db.kind == "mariadb" else "root@localhost")
        history = dict(
            (
                await conn.execute(select(z.ticket_history_type.c.name, z.ticket_history_type.c.id))
            ).all()
        )
        assert history["TicketLinkAdd"] == 30 and history["TitleUpdate"] == 50
        assert history == HISTORY_TYPE_IDS
        created = (
            await conn.execute(select(z.valid.c.create_time).where(z.valid.c.id == 1))
        ).scalar_one()
        assert created == SEEDED_AT


async def test_columns_have_znunys_types_per_engine(znuny_database: ZnunyDatabase) -> None:
    types = await _column_types(znuny_database)
    if znuny_database.kind == "postgresql":
        assert types["article_data_mime_plain", "body"] == ("text", None)
        assert types["article_data_mime_attachment", "content"] == ("text", None)
        assert types["article_data_mime", "a_subject"] == ("character varying", 3800)
        assert types["article_data_mime", "a_body"] == ("character varying", None)
        assert types["postmaster_filter", "f_value"] == ("character varying", 200)
        assert types["auto_response", "text0"] == ("character varying", 6000)
        assert types["ticket", "create_time"][0] == "timestamp without time zone"
        assert types["valid", "id"][0] == "integer"  # serial, though SMALLINT in Znuny's XML
    else:
        assert types["article_data_mime_plain", "body"][0] == "longblob"
        assert types["article_data_mime_attachment", "content"][0] == "longblob"
        assert types["article_data_mime", "a_subject"][0] == "text"
        assert types["article_data_mime", "a_body"][0] == "mediumtext"
        assert types["postmaster_filter", "f_value"] == ("varchar", 200)
        assert types["ticket", "create_time"][0] == "datetime"
        assert types["valid", "id"][0] == "smallint"
    assert types["communication_channel", "id"][0] == "bigint"
    assert types["ticket", "until_time"][0] in ("integer", "int")
    # What pytrs needs and Znuny 7.0 lacks.
    assert ("users", "email") not in types
    assert ("auto_response", "language") not in types
    assert ("postmaster_filter", "id") not in types
    assert ("ticket_loop_protection", "id") not in types
    assert ("communication_channel", "displayable") not in types


async def test_foreign_keys_exist_and_are_enforced(znuny_database: ZnunyDatabase) -> None:
    db = znuny_database
    query = text(
        "SELECT count(*) FROM information_schema.table_constraints "
        "WHERE table_schema = :schema AND constraint_type = 'FOREIGN KEY'"
    )
    declared = sum(len(t.foreign_key_constraints) for t in z.metadata.tables.values())
    async with db.engine.connect() as conn:
        assert (await conn.execute(query, {"schema": db.schema})).scalar_one() == declared
    row = {
        "ticket_id": 999999,
        "article_sender_type_id": 3,
        "communication_channel_id": 1,
        "is_visible_for_customer": 1,
        "create_time": SEEDED_AT,
        "create_by": 1,
        "change_time": SEEDED_AT,
        "change_by": 1,
    }
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(insert(z.article), row)


async def test_populate_writes_tickets_satisfying_every_foreign_key(
    znuny_database: ZnunyDatabase,
) -> None:
    db = znuny_database
    population = await populate(db.engine, tickets=300, seed=7)
    assert await _count(db, z.ticket) == 301  # with Znuny's welcome ticket
    assert len(population.article_ids) >= 300
    # Every reference resolves (checked here as well as by the server's own keys).
    async with db.engine.connect() as conn:
        for table in z.metadata.tables.values():
            for key in table.foreign_key_constraints:
                local = next(iter(key.columns))
                target = key.elements[0].column
                remote = target.table.alias("referenced").c[target.name]
                orphans = (
                    await conn.execute(
                        select(func.count())
                        .select_from(table.outerjoin(remote.table, local == remote))
                        .where(and_(local.is_not(None), remote.is_(None)))
                    )
                ).scalar_one()
                assert orphans == 0, f"{table.name}.{local.name} → {target.table.name}"
        per_ticket = (
            await conn.execute(
                select(z.article.c.ticket_id, func.count()).group_by(z.article.c.ticket_id)
            )
        ).all()
    assert {n for _ticket, n in per_ticket} <= set(range(1, 7))
    assert len(per_ticket) == 301
    assert await _count(db, z.dynamic_field_value) > 100
    assert await _count(db, z.link_relation) > 30
    assert await _count(db, z.ticket_number_counter) == 10
    assert await _count(db, z.article_data_mime_send_error) > 0
    assert (
        await _count(
            db,
            z.article_data_mime_attachment,
            z.article_data_mime_attachment.c.filename == "file-2",
        )
        > 0
    )
    # Articles in Znuny's search index are marked as indexed, the others as still to do.
    indexed = select(z.article_search_index.c.article_id)
    assert await _count(db, z.article, z.article.c.id.in_(indexed)) > 100
    assert (
        await _count(
            db, z.article, z.article.c.id.in_(indexed), z.article.c.search_index_needs_rebuild == 1
        )
        == 0
    )
    assert (
        await _count(db, z.postmaster_filter, z.postmaster_filter.c.f_name == "Vendor case numbers")
        == 4
    )


async def test_bodies_and_attachments_are_stored_as_znuny_stores_them(
    znuny_database: ZnunyDatabase,
) -> None:
    db = znuny_database
    population = await populate(db.engine, tickets=60, seed=11)
    async with db.engine.connect() as conn:
        bodies = dict(
            (
                await conn.execute(
                    select(
                        z.article_data_mime_plain.c.article_id, z.article_data_mime_plain.c.body
                    ).where(z.article_data_mime_plain.c.article_id.in_(population.raw_mails))
                )
            ).all()
        )
        contents = dict(
            (
                await conn.execute(
                    select(
                        z.article_data_mime_attachment.c.id,
                        z.article_data_mime_attachment.c.content,
                    )
                )
            ).all()
        )
    assert bodies.keys() == population.raw_mails.keys()
    assert any(b"\x00" in c or max(c) > 127 for c in population.attachments.values())
    for article_id, raw in population.raw_mails.items():
        stored = bodies[article_id]
        if db.base64_bodies:
            assert isinstance(stored, str)
            assert base64.b64decode(stored, validate=True) == raw
        else:
            assert stored == raw
    for attachment_id, content in population.attachments.items():
        stored = contents[attachment_id]
        assert (base64.b64decode(stored) if db.base64_bodies else stored) == content


async def test_ticket_numbers_follow_date_checksum(znuny_postgresql: ZnunyDatabase) -> None:
    population = await populate(znuny_postgresql.engine, tickets=50, seed=2)
    async with znuny_postgresql.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(z.ticket.c.tn, z.ticket.c.create_time).where(
                    z.ticket.c.id.in_(population.ticket_ids)
                )
            )
        ).all()
        counters = (
            await conn.execute(
                select(z.ticket_number_counter).order_by(z.ticket_number_counter.c.id)
            )
        ).all()
    for tn, created in rows:
        assert tn[:8] == f"{created:%Y%m%d}" and tn[8:10] == "10"
        assert date_checksum_number(created, int(tn[10:-1])) == tn
    # The newest counter row is the last ticket's number of the day.
    last_tn = population.ticket_numbers[population.ticket_ids[-1]]
    assert counters[-1].counter == int(last_tn[10:-1])
    assert len({c.counter_uid for c in counters}) == len(counters)


def test_date_checksum_matches_znunys_documented_example() -> None:
    # Znuny's DateChecksum module documents 2002062310100011 (SystemID 10, counter 10001).
    assert date_checksum_number(datetime(2002, 6, 23), 10001) == "2002062310100011"
    assert (
        date_checksum_number(datetime(2026, 12, 7), 1)[-1]
        != date_checksum_number(datetime(2026, 12, 7), 2)[-1]
    )


async def test_populate_is_deterministic_for_a_seed(znuny_postgresql: ZnunyDatabase) -> None:
    async with znuny_postgresql.engine.connect() as conn:
        ids = await _next_ids(conn)
    runs = []
    for _ in range(2):
        generator = _Generator("postgresql", random.Random(5), dict(ids))
        generator.run(25)
        runs.append(generator.rows.rows)
    assert runs[0] == runs[1]
    other = _Generator("postgresql", random.Random(6), dict(ids))
    other.run(25)
    assert other.rows.rows != runs[0]
