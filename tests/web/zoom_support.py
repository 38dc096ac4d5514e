"""What the ticket zoom's tests share: a configuration with a signature and the recording
relay, mail ingested through the real path (inbox row → postmaster worker), agents of every
role, and the outbox sent once to the relay.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from sqlalchemy import insert, select, update

from pytrs.config import Config
from pytrs.gateway.addresses import AddressBook
from pytrs.outbound.sender import OutboxSender
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.provisioning import provision
from pytrs.schema import inbox_repo
from pytrs.schema.database import Database
from pytrs.schema.system_data import with_runtime_secrets
from pytrs.schema.tables import article, permission_groups, queue, ticket
from pytrs.vocabulary.inbox import InboxItem

from ..conftest import make_config

SIGNATURE = "Example Support\nhttps://support.example.com"
LOOP_SECRET = "0123456789abcdef-loop-secret-for-tests"


def zoom_config(database_settings: dict[str, Any], relay_address: str = "") -> Config:
    outbound: dict[str, Any] = {"loop_secret": LOOP_SECRET, "timeout_seconds": 5.0}
    if relay_address:
        outbound["relay"] = relay_address
    return make_config(
        database_settings,
        outbound=outbound,
        agent_mail={"notify_new_ticket": False, "notify_follow_up": False},
        # Not UTC: pending times typed and deadlines shown are local.
        scheduler={"timezone": "Europe/Berlin"},
        queues=[
            {"name": "Support", "follow_up": "possible", "signature": SIGNATURE},
            {"name": "Sales", "follow_up": "new_ticket"},
            {"name": "Billing", "follow_up": "reject"},
        ],
    )


async def provision_desk(db: Database, config: Config) -> None:
    """The configuration's rows, with queue Sales in a group of its own ("sales"), so that
    an agent of Sales is an agent of another queue (provisioned queues share group users)."""
    await provision(db, config)
    async with db.transaction() as conn:
        group_id = await conn.scalar(
            insert(permission_groups)
            .values(name="sales", valid_id=1)
            .returning(permission_groups.c.id)
        )
        await conn.execute(update(queue).where(queue.c.name == "Sales").values(group_id=group_id))


async def deliver(
    config: Config, db: Database, raw: bytes, to: str = "support@example.com"
) -> None:
    """Store `raw` in the inbox as the gateway would and route it with one worker."""
    async with db.transaction() as conn:
        await inbox_repo.store(conn, [InboxItem("smtp", raw, recipient=to)])
    addresses = AddressBook()
    await addresses.reload(db)
    await PostmasterWorker(config, db, addresses).drain()


async def deliver_many(config: Config, db: Database, mails: list[bytes]) -> None:
    """Store every mail in the inbox, then route them all with one worker."""
    async with db.transaction() as conn:
        await inbox_repo.store(
            conn, [InboxItem("smtp", raw, recipient="support@example.com") for raw in mails]
        )
    addresses = AddressBook()
    await addresses.reload(db)
    await PostmasterWorker(config, db, addresses).drain()


async def newest_ticket(db: Database) -> tuple[int, str]:
    async with db.connect() as conn:
        row = (
            await conn.execute(select(ticket.c.id, ticket.c.tn).order_by(ticket.c.id.desc()))
        ).first()
    assert row is not None
    return int(row.id), row.tn


async def article_ids(db: Database, ticket_id: int) -> list[int]:
    async with db.connect() as conn:
        rows = await conn.execute(
            select(article.c.id).where(article.c.ticket_id == ticket_id).order_by(article.c.id)
        )
        return [int(i) for i in rows.scalars()]


async def send_outbox(config: Config, db: Database) -> None:
    sender = OutboxSender(await with_runtime_secrets(db, config), db)
    try:
        await sender.run_once()
    finally:
        await sender.close()


def _png(width: int, height: int) -> bytes:
    """A small PNG: a red square with a white band (the customer's logo)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00"
        + (b"\xff\xff\xff" if height // 3 <= y < 2 * height // 3 else b"\xcc\x22\x22") * width
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )  # fmt: skip


PNG = _png(48, 48)


def realistic_mail(
    subject: str = "Printer on fire", message_id: str = "<first@customer.example>"
) -> bytes:
    """An HTML mail with an inline logo, a remote image, a PDF attachment and a text part."""
    msg = EmailMessage()
    msg["From"] = "Alice Customer <alice@customer.example>"
    msg["To"] = "support@example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = "Sun, 06 Dec 2026 09:30:00 +0000"
    msg.set_content("Hello,\n\nthe printer on floor 3 is on fire.\nPlease hurry.\n\nAlice\n")
    msg.add_alternative(
        "<html><body><p>Hello,</p><p>the printer on <b>floor 3</b> is "
        '<span style="color:#c00">on fire</span>.</p><p><img src="cid:logo@customer.example" '
        'alt="logo"> <img src="https://images.customer.example/photo.jpg" alt="photo"></p>'
        "<p>Please hurry.</p><p>Alice</p></body></html>",
        subtype="html",
    )
    html_part = msg.get_payload()[1]  # type: ignore[index]
    html_part.add_related(PNG, "image", "png", cid="<logo@customer.example>")
    msg.add_attachment(
        b"%PDF-1.4 floor plan", maintype="application", subtype="pdf", filename="floor plan.pdf"
    )
    return msg.as_bytes()


def follow_up(tn: str, body: str = "It is getting worse.\n") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Alice Customer <alice@customer.example>"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"Re: [Ticket#{tn}] Printer on fire"
    msg["Message-ID"] = "<second@customer.example>"
    msg["In-Reply-To"] = "<first@customer.example>"
    msg.set_content(body)
    return msg.as_bytes()


@dataclass(frozen=True)
class Roles:
    """Logins of one agent per role."""

    admin: str = "boss"
    rw: str = "jdoe"
    ro: str = "reader"
    other: str = "seller"


async def make_roles(make_user: Callable[..., Awaitable[int]]) -> Roles:
    roles = Roles()
    await make_user(roles.admin, role="admin", queues={})
    await make_user(roles.rw, queues={"Support": "rw"})
    await make_user(roles.ro, queues={"Support": "ro"})
    await make_user(roles.other, queues={"Sales": "rw"})
    return roles
