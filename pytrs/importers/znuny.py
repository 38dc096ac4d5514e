"""`pytrs import znuny`: copy a Znuny (>= 7.0) installation into this database.

Place in the flow: run by an operator, not by the daemon. It reads Znuny's database through
`znuny_source`, maps ids through `mapping`, writes names, queues, addresses, agents, customers,
dynamic fields, responses and filters (`setup_rows`), then tickets batch by batch, links and
the ticket-number counter (`ticket_copy`). Every step asks what is here already, so a second
run copies nothing twice and an interrupted run goes on where it stopped. A dry run does all
of it inside one transaction that is rolled back: the same summary, nothing written.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.importers import setup_rows, ticket_copy, znuny_source
from pytrs.importers.mapping import Ids
from pytrs.importers.report import Progress, Summary
from pytrs.importers.setup_rows import ImportRefused
from pytrs.importers.ticket_copy import TicketCopy, Transaction
from pytrs.routing.ticket_number import TicketNumberGenerator
from pytrs.schema import import_repo, tables
from pytrs.schema.database import Database, utcnow

__all__ = ["ImportOptions", "ImportRefused", "import_znuny"]


@dataclass(frozen=True, slots=True)
class ImportOptions:
    numbers: TicketNumberGenerator  # this installation's generator: its counter is raised
    batch: int = 100  # tickets per transaction
    dry_run: bool = False
    max_attachment_bytes: int = 26214400


async def import_znuny(
    target: Database, source: Database, options: ImportOptions, stream: TextIO | None = None
) -> Summary:
    """Copy `source` (a Znuny database) into `target`; the summary says what happened.

    Raises ImportRefused when `source` is not a Znuny database or disagrees with `target` in a
    way that skipping rows cannot settle; StorageError and the drivers' errors as they come.
    """
    summary = Summary(dry_run=options.dry_run)
    async with source.connect() as src:
        missing = await znuny_source.missing_tables(src, znuny_source.REQUIRED)
        if missing:
            raise ImportRefused(
                f"the source database has no table {', '.join(missing)}: is this Znuny's "
                "database (and, on PostgreSQL, its schema: --schema)?"
            )
        optional = [*znuny_source.LOOKUPS, *znuny_source.OPTIONAL]
        present = set(optional) - set(await znuny_source.missing_tables(src, optional))
        blobs = await znuny_source.detect_blobs(src)
        total = await znuny_source.count(src, znuny_source.ticket)
        async with _transactions(target, options.dry_run) as transaction:
            await _copy(src, transaction, present, blobs, options, summary, Progress(stream, total))
    return summary


@contextlib.asynccontextmanager
async def _transactions(target: Database, dry_run: bool) -> AsyncIterator[Transaction]:
    """A transaction per step; in a dry run all of them are one, rolled back at the end."""
    if not dry_run:
        yield target.transaction
        return
    async with target.connect() as conn:
        outer = await conn.begin()

        @contextlib.asynccontextmanager
        async def same() -> AsyncIterator[AsyncConnection]:
            yield conn

        try:
            yield same
        finally:
            await outer.rollback()


async def _copy(
    src: AsyncConnection,
    transaction: Transaction,
    present: set[str],
    blobs: znuny_source.BlobTables,
    options: ImportOptions,
    summary: Summary,
    progress: Progress,
) -> None:
    ids = Ids(dry_run=options.dry_run)
    async with transaction() as conn:
        await setup_rows.copy_names(src, conn, present, ids, summary)
        await setup_rows.copy_queues_and_addresses(src, conn, ids, summary)
        await setup_rows.copy_agents(src, conn, ids, summary)
        if "customer_user" in present:
            await setup_rows.copy_customers(src, conn, ids, summary)
        field_kinds = await setup_rows.copy_fields(src, conn, ids, summary)
        if "auto_response" in present:
            await setup_rows.copy_responses(src, conn, ids, summary)
        if "postmaster_filter" in present:
            await setup_rows.copy_filters(src, conn, summary)
        history_types = await import_repo.ids_by_key(
            conn, tables.Base.metadata.tables["ticket_history_type"]
        )
    how = TicketCopy(
        blobs=blobs,
        field_kinds=field_kinds,
        batch=options.batch,
        max_attachment_bytes=options.max_attachment_bytes,
        misc_type_id=history_types["Misc"],
        email_channels=frozenset(await _email_channels(src)),
    )
    numbers = await ticket_copy.copy_tickets(src, transaction, how, ids, summary, progress)
    async with transaction() as conn:
        if {"link_relation", "link_object"} <= present:
            await ticket_copy.copy_links(src, conn, ids, summary)
        await ticket_copy.copy_counter(
            src, conn, numbers, options.numbers, utcnow().date(), summary
        )


async def _email_channels(src: AsyncConnection) -> list[int]:
    channels = await znuny_source.rows(src, znuny_source.LOOKUPS["communication_channel"])
    return [row["id"] for row in channels if row["name"] == "Email"]
