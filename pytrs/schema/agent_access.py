"""One agent's account and queue access, read for each request that signs in or acts.

Place in the flow: the web view (and later the JSON API) reads an agent here at login and on
every request, so that a password change, `pytrs users disable` or a changed queue permission
takes effect at once; that re-read also refuses a session that logout ended (``web_sessions``).
Access is Znuny's: `rw`/`ro` on a queue's group (`queue.group_id`), an
administrator holds `rw` on group `admin` (id 2). The rows are written by `users_repo.py`
(`pytrs users`) and `agent_groups.py` (`[[agents]]`); beside Znuny an agent's roles give
rights too (`agent_rights`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import agent_address, agent_rights, storable
from pytrs.schema.database import Database
from pytrs.schema.tables import queue, users, web_session_end
from pytrs.vocabulary import znuny

GROUP_ADMIN = 2  # Znuny's seeded group `admin`
VALID = 1
READ_WRITE, READ_ONLY = "rw", "ro"


class QueuePermissions:
    """What an agent may do in a queue, for any class with `is_admin` and `queues`
    ({queue id: "rw" | "ro"}, every queue "rw" for an administrator): the web view's signed-in
    agent and the JSON API's token holder share these rules."""

    __slots__ = ()
    is_admin: bool
    queues: Mapping[int, str]

    def can_read(self, queue_id: int) -> bool:
        return self.is_admin or queue_id in self.queues

    def can_write(self, queue_id: int) -> bool:
        return self.is_admin or self.queues.get(queue_id) == READ_WRITE

    @property
    def readable(self) -> frozenset[int]:
        """Queue ids the agent may read (every queue for an admin): filter queries by these."""
        return frozenset(self.queues)

    @property
    def writable(self) -> frozenset[int]:
        """Queue ids the agent may act in (every queue for an admin)."""
        return frozenset(q for q, key in self.queues.items() if key == READ_WRITE)


@dataclass(frozen=True, slots=True)
class AgentAccount:
    """An account as stored; `pw` is the argon2id hash (never shown, only verified)."""

    id: int
    login: str
    name: str
    email: str
    pw: str = field(repr=False)
    valid: bool
    admin: bool
    # queue id → "rw" | "ro" (rw wins when both are held); an administrator: "rw" on every
    # queue, so that a query filtered by these ids shows an admin everything
    queues: dict[int, str] = field(default_factory=dict)


async def by_login(db: Database, login: str) -> AgentAccount | None:
    """The account with this login (exact match, as Znuny), or None; never the system user."""
    if storable.clean(login) != login:  # a NUL, not UTF-8: stored logins have none, and
        return None  # PostgreSQL refuses such a query parameter
    async with db.connect() as conn:
        user_id = await conn.scalar(select(users.c.id).where(users.c.login == login))
        if user_id is None or user_id == znuny.USER_ROOT:
            return None
        return await _load(conn, user_id)


async def by_id(
    db: Database, user_id: int, *, session_id: str | None = None
) -> AgentAccount | None:
    """The account with this id, or None (also for the system user, who never signs in, and,
    given `session_id`, when that web session was ended by logout)."""
    if user_id == znuny.USER_ROOT:
        return None
    async with db.connect() as conn:
        return await _load(conn, user_id, session_id)


async def _load(
    conn: AsyncConnection, user_id: int, session_id: str | None = None
) -> AgentAccount | None:
    u = users.c
    email = agent_address.address(conn).label("email")
    query = select(u.id, u.login, u.first_name, u.last_name, email, u.pw, u.valid_id).where(
        u.id == user_id
    )
    if session_id is not None:
        # One primary-key probe in the same statement: an ended session finds no account.
        ended = web_session_end.c.session_id == session_id
        query = query.where(~exists().where(ended))
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        return None
    rights = agent_rights.held(conn).c
    grants = (
        await conn.execute(
            select(rights.group_id, rights.permission_key).where(
                rights.user_id == user_id,
                rights.permission_key.in_((READ_WRITE, READ_ONLY)),
            )
        )
    ).all()
    held: dict[int, set[str]] = {}
    for grant in grants:
        held.setdefault(grant.group_id, set()).add(grant.permission_key)
    admin = READ_WRITE in held.get(GROUP_ADMIN, set())
    access: dict[int, str] = {}
    if held:
        queues = select(queue.c.id, queue.c.group_id)
        if not admin:
            queues = queues.where(queue.c.group_id.in_(held))
        for q in await conn.execute(queues):
            keys = {READ_WRITE} if admin else held[q.group_id]
            access[q.id] = READ_WRITE if READ_WRITE in keys else READ_ONLY
    name = " ".join(part for part in (row.first_name, row.last_name) if part)
    return AgentAccount(
        id=row.id,
        login=row.login,
        name=name or row.login,
        email=agent_address.text_of(row.email),
        pw=row.pw or "",
        valid=row.valid_id == VALID,
        admin=admin,
        queues=access,
    )


async def writers_of(conn: AsyncConnection, queue_id: int) -> list[str]:
    """Logins of the valid agents who may work on tickets of this queue (`rw` on its group, or
    administrators): who an owner may be, as Znuny's owner lists offer only them."""
    g = agent_rights.held(conn).c
    queue_group = select(queue.c.group_id).where(queue.c.id == queue_id).scalar_subquery()
    query = (
        select(users.c.login)
        .where(
            users.c.valid_id == VALID,
            users.c.id != znuny.USER_ROOT,
            exists().where(
                g.user_id == users.c.id,
                g.permission_key == READ_WRITE,
                g.group_id.in_([queue_group, GROUP_ADMIN]),
            ),
        )
        .order_by(users.c.login)
    )
    return list(await conn.scalars(query))
