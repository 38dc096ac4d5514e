"""`/readyz`: may this process be given work? Three checks, each with its reason.

Place in the flow: called by `web.ops` for each probe. The database must answer a trivial
query within `DATABASE_TIMEOUT_SECONDS`; its schema must be at the head revision (what
`pytrs db check` checks; the answer is kept `MIGRATIONS_CACHE_SECONDS`, as a probe every few
seconds need not ask Alembic every time); and every service the daemon supervises in this
process must be running — one restarting after a crash, or stopped because shutdown began, is
a reason to send work elsewhere. An app built outside a daemon has no services to report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from pytrs.runtime.services import ServiceStates
from pytrs.schema import migrate, ops_repo
from pytrs.schema.database import Database, reason

DATABASE_TIMEOUT_SECONDS = 2.0
MIGRATIONS_CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    reason: str = ""  # why not, in one sentence saying what to do


class Readiness:
    """The readiness checks of one app."""

    def __init__(
        self, db: Database, services: ServiceStates | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.db = db
        self.services = services
        self.clock = clock
        self._migrations: tuple[float, Check] | None = None

    async def checks(self) -> list[Check]:
        database = await self._database()
        if database.ok:
            migrations = await self._migrations_check()
        else:
            migrations = Check("migrations", False, "not checked: the database does not answer")
        return [database, migrations, self._services()]

    @staticmethod
    def document(checks: list[Check]) -> dict[str, object]:
        """The JSON body: overall status and each check."""
        ready = all(c.ok for c in checks)
        return {"status": "ready" if ready else "not ready", "checks": [asdict(c) for c in checks]}

    async def _database(self) -> Check:
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS), self.db.connect() as conn:
                await ops_repo.ping(conn)
        except TimeoutError:
            why = f"the database did not answer within {DATABASE_TIMEOUT_SECONDS:g} s"
            return Check("database", False, why)
        except Exception as exc:
            return Check("database", False, f"the database cannot be reached: {reason(exc)}")
        return Check("database", True)

    async def _migrations_check(self) -> Check:
        now = self.clock()
        if self._migrations is not None and now - self._migrations[0] < MIGRATIONS_CACHE_SECONDS:
            return self._migrations[1]
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS):
                at_head, current, head = await migrate.is_at_head(self.db)
        except Exception as exc:
            why = "no answer" if isinstance(exc, TimeoutError) else reason(exc)
            return Check("migrations", False, f"the schema version cannot be read: {why}")
        check = Check("migrations", True)
        if not at_head:
            check = Check(
                "migrations", False,
                f"the schema is at {current or 'nothing'}, not at head {head}: "
                "run `pytrs db upgrade`",
            )  # fmt: skip
        self._migrations = (now, check)
        return check

    def _services(self) -> Check:
        if self.services is None:
            return Check("services", True, "not run by a daemon: no services to check")
        problems = self.services.problems()
        if not problems:
            return Check("services", True)
        listed = "; ".join(f"{name} {state}" for name, state in problems.items())
        return Check("services", False, f"not every service is running: {listed}")
