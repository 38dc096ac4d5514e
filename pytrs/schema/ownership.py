"""Which rows the configuration file owns (``provisioned_row``), for provisioning at start.

Place in the flow: ``provision`` and ``response_repo.sync_auto_responses`` record every row the
file names, created or taken over by name, and later retire only rows recorded here that the
file no longer names. Rows made by other means (the Znuny admin interface, SQL, an import) are
never recorded unless the file names them, so a start with an empty section leaves them alone.

A record holds the row's id and key; it counts only while both still match, so a row made by
hand under an id SQLite handed out again is not mistaken for one of ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema.database import conflict_insert
from pytrs.schema.tables import provisioned_row


async def owned(conn: AsyncConnection, kind: str, current: Mapping[int, str]) -> set[int]:
    """The ids among `current` (row id → key, rows of table `kind` as they are now) that the
    file owns."""
    rows = await conn.execute(
        select(provisioned_row.c.row_id, provisioned_row.c.row_key).where(
            provisioned_row.c.kind == kind
        )
    )
    return {r.row_id for r in rows if current.get(r.row_id) == r.row_key}


async def own(conn: AsyncConnection, kind: str, rows: Mapping[int, str]) -> None:
    """Record `rows` (row id → key) as the file's, replacing stale records of the same ids."""
    if not rows:
        return
    statement = conflict_insert(conn, provisioned_row)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["kind", "row_id"], set_={"row_key": statement.excluded.row_key}
        ),
        [{"kind": kind, "row_id": i, "row_key": key} for i, key in rows.items()],
    )


async def disown(conn: AsyncConnection, kind: str, ids: Iterable[int]) -> None:
    """Forget rows that were deleted."""
    ids = list(ids)
    if ids:
        await conn.execute(
            delete(provisioned_row).where(
                provisioned_row.c.kind == kind, provisioned_row.c.row_id.in_(ids)
            )
        )
