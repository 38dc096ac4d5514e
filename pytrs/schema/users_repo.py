"""Agents and administrators in Znuny's `users`, `permission_groups` and `group_user` tables.

Place in the flow: `pytrs users` (commands/users.py) stores and reads accounts here; the
password arrives hashed. A role is a membership: an admin holds `rw` on group `admin`
(id 2), an agent does not. Queue access is a permission on the queue's group
(`queue.group_id`), so queues that share a group share access, as in Znuny.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema.database import Database, utcnow
from pytrs.schema.tables import group_user, queue, users
from pytrs.vocabulary import znuny

GROUP_ADMIN = 2  # Znuny's seeded group `admin`
VALID, INVALID = 1, 2


class UserExists(Exception):
    """`users add` of a login that is taken."""


class NoSuchUser(Exception):
    """A login no row has."""


class UnknownQueue(Exception):
    """A queue name no row has."""


@dataclass(frozen=True, slots=True)
class NewUser:
    login: str
    email: str
    pw: str  # the hash
    first_name: str = ""
    last_name: str = ""
    admin: bool = False
    queues: tuple[str, ...] = ()  # by name; empty with all_queues
    all_queues: bool = False
    permission: str = "rw"


@dataclass(frozen=True, slots=True)
class UserRow:
    login: str
    name: str
    email: str
    admin: bool
    valid: bool
    # queue name → "rw" / "ro", through the queue's group
    queues: dict[str, str] = field(default_factory=dict)


def _audit() -> dict[str, object]:
    now = utcnow()
    return {"create_time": now, "create_by": 1, "change_time": now, "change_by": 1}


async def _queue_groups(conn: AsyncConnection, new: NewUser) -> set[int]:
    """The groups whose permission gives `new` its queues: the named queues' groups, or every
    group a valid queue uses now (`all_queues`; queues added later are not included)."""
    rows = (await conn.execute(select(queue.c.name, queue.c.group_id, queue.c.valid_id))).all()
    if new.all_queues:
        return {r.group_id for r in rows if r.valid_id == VALID}
    groups = {r.name: r.group_id for r in rows}
    missing = [name for name in new.queues if name not in groups]
    if missing:
        raise UnknownQueue(", ".join(missing))
    return {groups[name] for name in new.queues}


async def add(db: Database, new: NewUser) -> None:
    """Store a new account with its memberships; UserExists, UnknownQueue."""
    async with db.transaction() as conn:
        taken = await conn.scalar(select(users.c.id).where(users.c.login == new.login))
        if taken is not None:
            raise UserExists(new.login)
        groups = await _queue_groups(conn, new)
        inserted = await conn.execute(
            users.insert().returning(users.c.id).values(
                login=new.login, pw=new.pw, email=new.email.lower(), first_name=new.first_name,
                last_name=new.last_name, valid_id=VALID, **_audit(),
            )
        )  # fmt: skip
        user_id = inserted.scalar_one()
        rows = [(group, new.permission) for group in sorted(groups)]
        if new.admin:
            rows.append((GROUP_ADMIN, "rw"))
        await _grant(conn, user_id, rows)


async def _grant(conn: AsyncConnection, user_id: int, rows: Iterable[tuple[int, str]]) -> None:
    values = [
        {"user_id": user_id, "group_id": g, "permission_key": key, **_audit()}
        for g, key in dict.fromkeys(rows)
    ]
    if values:
        await conn.execute(group_user.insert(), values)


async def _set(db: Database, login: str, **values: object) -> None:
    async with db.transaction() as conn:
        result = await conn.execute(
            update(users)
            .where(users.c.login == login)
            .values(**values, change_time=utcnow(), change_by=1)
        )
        if result.rowcount == 0:
            raise NoSuchUser(login)


async def set_password(db: Database, login: str, pw: str) -> None:
    """Store a new hash; NoSuchUser."""
    await _set(db, login, pw=pw)


async def disable(db: Database, login: str) -> None:
    """valid_id = 2: the account can no longer sign in; its rows stay. NoSuchUser."""
    await _set(db, login, valid_id=INVALID)


async def exists(db: Database, login: str) -> bool:
    async with db.connect() as conn:
        return await conn.scalar(select(users.c.id).where(users.c.login == login)) is not None


async def listing(db: Database) -> list[UserRow]:
    """Every account but the system user (root@localhost, id 1), by login; never the hashes."""
    async with db.connect() as conn:
        u = users.c
        people = (
            await conn.execute(
                select(u.id, u.login, u.first_name, u.last_name, u.email, u.valid_id)
                .where(u.id != znuny.USER_ROOT)
                .order_by(u.login)
            )
        ).all()
        grants = (await conn.execute(select(group_user))).all()
        by_name = select(queue.c.name, queue.c.group_id).order_by(queue.c.name)
        queues = (await conn.execute(by_name)).all()
    found = []
    for person in people:
        keys: dict[int, set[str]] = {}
        for grant in grants:
            if grant.user_id == person.id:
                keys.setdefault(grant.group_id, set()).add(grant.permission_key)
        access = {}
        for q in queues:
            held = keys.get(q.group_id, set())
            if "rw" in held:
                access[q.name] = "rw"
            elif "ro" in held:
                access[q.name] = "ro"
        name = " ".join(part for part in (person.first_name, person.last_name) if part)
        found.append(
            UserRow(
                login=person.login, name=name, email=person.email or "",
                admin="rw" in keys.get(GROUP_ADMIN, set()), valid=person.valid_id == VALID,
                queues=access,
            )
        )  # fmt: skip
    return found
