"""A lease reports the bytes of the rows it took (the worker decides from it whether a batch
waits for a big-message slot), from the same read that picked the rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pytrs.schema import inbox_repo
from pytrs.vocabulary.inbox import InboxItem


async def test_a_lease_counts_the_size_of_the_rows_it_took(db: Any) -> None:
    raws = [b"Subject: %d\r\n\r\n" % n + b"x" * (1000 * (n + 1)) for n in range(4)]
    async with db.transaction() as conn:
        await inbox_repo.store(conn, [InboxItem("smtp", r, recipient="a@b.example") for r in raws])
    lease = timedelta(seconds=60)
    # 1,016 + 2,016 fit in 3,100 bytes; the third row (3,016) would not.
    first = await inbox_repo.lease_rows(db, 10, lease, max_bytes=3100)
    assert first is not None and len(first.ids) == 2
    assert first.size == len(raws[0]) + len(raws[1])
    claimed = await inbox_repo.load_leased(db, first)
    assert [len(m.raw) for m in claimed] == [len(raws[0]), len(raws[1])]
    rest = await inbox_repo.lease_rows(db, 10, lease)
    assert rest is not None and rest.size == len(raws[2]) + len(raws[3])
    assert await inbox_repo.lease_rows(db, 10, lease) is None
