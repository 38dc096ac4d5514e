"""Hostile header values become articles on both engines, never a failed batch (real daemon).

Mail is copied into many text columns: the article's MIME fields, attachment names and types,
the ticket's title and customer, dynamic fields and history names. A NUL, bytes that are not
UTF-8 or an over-long value in any of them must be stored (cleaned and cut to the column), and
the raw message kept byte for byte.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from pytrs.schema.tables import (
    article_data_mime_attachment,
    article_data_mime_plain,
    dynamic_field_value,
    inbox,
    ticket,
    ticket_history,
)

from .conftest import make_config, wait_until
from .helpers import all_processed, make_mail, send

HOSTILE = {
    "nul": b"a\x00b",
    "not-utf8": b"a\xff\xfeb",
    "long": b"L" * 5000,
}


def _hostile_mail(bad: bytes, subject: bytes = b"hostile") -> bytes:
    """A trusted mail carrying `bad` in every header the postmaster copies into a column."""
    head = b"".join(
        name + b": " + value + b"\r\n"
        for name, value in (
            (b"From", b'"Eve ' + bad + b'" <eve@attacker.example>'),
            (b"To", b"support@example.com, " + bad + b"@x.example"),
            (b"Cc", bad + b"@x.example"),
            (b"Reply-To", bad + b"@x.example"),
            (b"Subject", subject + b" " + bad),
            (b"Message-ID", b"<" + bad + b"@attacker.example>"),
            (b"In-Reply-To", b"<" + bad + b"@x.example>"),
            (b"References", b"<" + bad + b"@x.example>"),
            (b"X-PyTRS-Title", b"title " + bad),
            (b"X-PyTRS-CustomerUser", b"cu " + bad),
            (b"X-PyTRS-CustomerNo", b"cn " + bad),
            (b"X-PyTRS-DynamicField-Hostile", b"df " + bad),
            (b"X-PyTRS-Priority", b"prio " + bad),
            (b"MIME-Version", b"1.0"),
            (b"Content-Type", b'multipart/mixed; boundary="b"'),
        )
    )
    part = (
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbody " + bad + b"\r\n"
        b"--b\r\nContent-Type: application/x-" + bad + b'; name="f' + bad + b'.txt"\r\n'
        b"Content-ID: <c" + bad + b">\r\n"
        b'Content-Disposition: attachment; filename="f' + bad + b'.txt"\r\n\r\ndata\r\n'
    )
    # The same name twice: the second gets a suffix, which must fit the column too.
    return head + b"\r\n" + part + part + b"--b--\r\n"


@pytest.mark.parametrize("kind", list(HOSTILE))
async def test_hostile_values_become_an_article(
    kind: str, start_daemon: Any, database_settings: dict[str, Any], db: Any
) -> None:
    from pytrs.schema.tables import dynamic_field

    async with db.transaction() as conn:
        await conn.execute(
            dynamic_field.insert().values(
                name="Hostile", label="Hostile", field_type="Text", object_type="Ticket",
                create_time=_now(), change_time=_now(),
            )
        )  # fmt: skip
    config = make_config(database_settings, postmaster={"trusted_sources": ["smtp"]})
    daemon = await start_daemon(config)
    raw = _hostile_mail(HOSTILE[kind])
    await send(daemon.port(), raw)
    await wait_until(lambda: all_processed(db))
    async with db.connect() as conn:
        [row] = (await conn.execute(select(inbox))).all()
        assert row.state == "done", row.last_error
        [t] = (await conn.execute(select(ticket))).all()
        sender = "eve@attacker.example"  # a participant: the follow-up stays on the ticket
        follow_up = make_mail(subject=f"[Ticket#{t.tn}] more", sender=sender).replace(
            b"Subject:", b"X-PyTRS-FollowUp-Title: new " + HOSTILE[kind] + b"\r\n"
            b"X-PyTRS-FollowUp-DynamicField-Hostile: " + HOSTILE[kind] + b"\r\nSubject:", 1,
        )  # fmt: skip
    # A follow-up changes the title and a field through its own headers.
    await send(daemon.port(), follow_up)
    await wait_until(lambda: _processed(db, 2))
    async with db.connect() as conn:
        states = (await conn.execute(select(inbox.c.state, inbox.c.last_error))).all()
        assert [s for s, _ in states] == ["done", "done"], states
        assert (await conn.scalar(select(article_data_mime_plain.c.body).limit(1))) == raw
        names = (await conn.execute(select(article_data_mime_attachment.c.filename))).scalars()
        names = [n for n in names if n != "file-2"]  # the HTML body's, when there is one
        assert len(names) == 2 and names[1].endswith("-1.txt"), names  # the duplicate's suffix
        texts = [
            *(await conn.execute(select(ticket.c.title, ticket.c.customer_user_id))).one(),
            *(await conn.execute(select(dynamic_field_value.c.value_text))).scalars(),
            *(await conn.execute(select(ticket_history.c.name))).scalars(),
        ]
    for value in texts:
        assert "\x00" not in (value or "")


async def _processed(db: Any, n: int) -> bool:
    async with db.connect() as conn:
        states = (await conn.execute(select(inbox.c.state))).scalars().all()
    return len(states) == n and "pending" not in states


def _now() -> Any:
    from pytrs.schema.database import utcnow

    return utcnow()


# Every table a writer fills from mail, with what a row needs besides its text columns.
_PARENTS: dict[str, dict[str, Any]] = {
    "inbox_message": {"size": 1, "raw": b"x"},
    "ticket": {"queue_id": 1, "ticket_lock_id": 1, "user_id": 1, "responsible_user_id": 1,
               "ticket_priority_id": 3, "ticket_state_id": 1},
    "article_data_mime": {"incoming_time": 0},
    "article_data_mime_attachment": {"content": b""},
    "ticket_history": {"history_type_id": 1, "queue_id": 1, "owner_id": 1, "priority_id": 3,
                       "state_id": 1},
    "dynamic_field_value": {},
    "article_data_mime_send_error": {},
    "outbox_message": {"size": 1, "raw": b"x"},
    "ticket_loop_protection": {},
    "address_suppression": {},
}  # fmt: skip


def _hostile_text(kind: str, limit: int | None) -> str:
    if kind == "long":
        return "L" * ((limit or 10_000) + 100)
    return HOSTILE[kind].decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("kind", list(HOSTILE))
async def test_every_text_column_stores_what_storable_makes_of_it(kind: str, db: Any) -> None:
    from sqlalchemy import DateTime, String, Text

    from pytrs.schema import storable
    from pytrs.schema.tables import Base, article

    now = _now()
    async with db.transaction() as conn:
        ticket_id = (await conn.execute(ticket.insert().values(
            tn="1", **_PARENTS["ticket"], create_time=now, change_time=now,
        ).returning(ticket.c.id))).scalar_one()  # fmt: skip
        article_id = (await conn.execute(article.insert().values(
            ticket_id=ticket_id, article_sender_type_id=1, communication_channel_id=1,
            create_time=now, change_time=now,
        ).returning(article.c.id))).scalar_one()  # fmt: skip
    ids = {"ticket_id": ticket_id, "article_id": article_id, "object_id": ticket_id,
           "field_id": None}  # fmt: skip
    for name, extra in _PARENTS.items():
        table = Base.metadata.tables[name]
        values: dict[str, Any] = dict(extra)
        for column in table.c:
            if column.name in ids and column.name != "field_id":
                values[column.name] = ids[column.name]
            elif isinstance(column.type, (String, Text)) and column.name not in values:
                values[column.name] = _hostile_text(kind, storable.column_limit(column))
            elif isinstance(column.type, DateTime):
                values[column.name] = now
        values.pop("field_id", None)
        if name == "dynamic_field_value":
            values["field_id"] = await _a_dynamic_field(db)
        stored = storable.row(table, values)
        async with db.transaction() as conn:
            keys = list(table.primary_key.columns)
            pk = (await conn.execute(table.insert().values(**stored).returning(*keys))).one()
            query = select(table).where(*(c == v for c, v in zip(keys, pk, strict=True)))
            back = (await conn.execute(query)).mappings().one()
        for column in table.c:
            got = back[column.name]
            if isinstance(got, str) and isinstance(values.get(column.name), str):
                assert got == stored[column.name], (name, column.name)
                assert "\x00" not in got and "\udcff" not in got
                limit = storable.column_limit(column)
                assert limit is None or len(got) <= limit


async def _a_dynamic_field(db: Any) -> int:
    from pytrs.schema.tables import dynamic_field

    async with db.transaction() as conn:
        return int((await conn.execute(dynamic_field.insert().values(
            name="F", label="F", create_time=_now(), change_time=_now(),
        ).returning(dynamic_field.c.id))).scalar_one())  # fmt: skip


async def test_overlong_keys_stay_distinct(db: Any) -> None:
    from pytrs.schema import inbox_repo
    from pytrs.vocabulary.inbox import InboxItem

    raw = make_mail()
    prefix = "support+" + "x" * 300
    items = [InboxItem("pop3", raw, recipient=prefix + s) for s in ("a@x.example", "b@x.example")]
    async with db.transaction() as conn:
        first = await inbox_repo.store(conn, items)
        again = await inbox_repo.store(conn, items)  # a re-fetch: the same keys, nothing new
    assert len(set(first)) == 2 and again == first
