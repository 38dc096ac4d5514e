"""Agents and administrators in Znuny's `users`, `permission_groups` and `group_user` tables.

Place in the flow: `pytrs users` (commands/users.py) and the admin pages (web/admin/agents.py)
store and read accounts here; the password arrives hashed. A role is a membership: an admin
holds `rw` on group `admin` (id 2), an agent does not. Queue access is a permission on the
queue's group (`queue.group_id`), so queues that share a group share access, as in Znuny.
Every write records who made it (`change_by`, `create_by`): the system user (1) for the
command line, the signed-in admin for the web.

An account the configuration's `[[agents]]` names (``provisioned_row``, see ``ownership``) has
its address, validity and queue access set again at every start; `provisioned` says so, and
`rename` changes only what the file leaves alone (name and role).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import agent_address, ownership
from pytrs.schema.database import Database, utcnow
from pytrs.schema.tables import group_user, queue, users
from pytrs.vocabulary import znuny

GROUP_ADMIN = 2  # Znuny's seeded group `admin`
VALID, INVALID = 1, 2
PERMISSIONS = ("rw", "ro")


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
    # By name: a tuple gives each queue `permission`; a mapping says "rw" or "ro" per queue.
    queues: tuple[str, ...] | Mapping[str, str] = ()
    # Every group a valid queue uses now, with `permission` (queues added later are not
    # included unless they share one of those groups); `queues` is then ignored.
    all_queues: bool = False
    permission: str = "rw"


@dataclass(frozen=True, slots=True)
class Change:
    """What an admin sets on an existing account: everything but its login and password."""

    first_name: str
    last_name: str
    email: str
    admin: bool
    queues: Mapping[str, str]  # queue name → "rw" | "ro"
    all_queues: bool = False
    permission: str = "rw"  # with all_queues


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    login: str
    name: str
    email: str
    admin: bool
    valid: bool
    # queue name → "rw" / "ro", through the queue's group
    queues: dict[str, str] = field(default_factory=dict)
    first_name: str = ""
    last_name: str = ""
    provisioned: bool = False  # named by `[[agents]]`: address, validity, queues are the file's


def _audit(by: int) -> dict[str, object]:
    now = utcnow()
    return {"create_time": now, "create_by": by, "change_time": now, "change_by": by}


async def _queue_groups(
    conn: AsyncConnection, queues: tuple[str, ...] | Mapping[str, str], every: str
) -> dict[int, str]:
    """Group id → permission for the named `queues` (name → "rw"/"ro", or names all given
    `every`); `rw` wins where two queues of one group were given different permissions."""
    rows = (await conn.execute(select(queue.c.name, queue.c.group_id))).all()
    wanted = dict(queues) if isinstance(queues, Mapping) else dict.fromkeys(queues, every)
    groups = {r.name: r.group_id for r in rows}
    missing = [name for name in wanted if name not in groups]
    if missing:
        raise UnknownQueue(", ".join(missing))
    found: dict[int, str] = {}
    for name, key in wanted.items():
        group = groups[name]
        found[group] = "rw" if "rw" in (key, found.get(group)) else key
    return found


async def _all_groups(conn: AsyncConnection, permission: str) -> dict[int, str]:
    """Every group a valid queue uses now, with `permission`."""
    rows = await conn.execute(select(queue.c.group_id).where(queue.c.valid_id == VALID))
    return {r.group_id: permission for r in rows}


async def add(db: Database, new: NewUser, *, by: int = znuny.USER_ROOT) -> None:
    """Store a new account with its memberships; UserExists, UnknownQueue."""
    async with db.transaction() as conn:
        taken = await conn.scalar(select(users.c.id).where(users.c.login == new.login))
        if taken is not None:
            raise UserExists(new.login)
        groups = await (
            _all_groups(conn, new.permission)
            if new.all_queues
            else _queue_groups(conn, new.queues, new.permission)
        )
        email = new.email.lower()
        table = agent_address.users_table(conn)
        inserted = await conn.execute(
            table.insert().returning(table.c.id).values(
                login=new.login, pw=new.pw, first_name=new.first_name, last_name=new.last_name,
                valid_id=VALID, **agent_address.row_values(conn, email), **_audit(by),
            )
        )  # fmt: skip
        user_id = inserted.scalar_one()
        await agent_address.store(conn, {user_id: email})
        await _grant(conn, user_id, groups, new.admin, by)


async def _grant(
    conn: AsyncConnection, user_id: int, groups: Mapping[int, str], admin: bool, by: int
) -> None:
    rows: list[tuple[int, str]] = sorted(groups.items())
    if admin:
        rows.append((GROUP_ADMIN, "rw"))
    values = [
        {"user_id": user_id, "group_id": g, "permission_key": key, **_audit(by)}
        for g, key in dict.fromkeys(rows)
    ]
    if values:
        await conn.execute(group_user.insert(), values)


async def _user_id(conn: AsyncConnection, login: str) -> int:
    found = await conn.scalar(select(users.c.id).where(users.c.login == login))
    if found is None:
        raise NoSuchUser(login)
    return int(found)


async def change(db: Database, login: str, new: Change, *, by: int = znuny.USER_ROOT) -> None:
    """Replace an account's name, address, role and queues; NoSuchUser, UnknownQueue.

    Every membership of the account is replaced, so that what is stored is what was asked:
    a membership `[[agents]]` gave comes back at the next start."""
    async with db.transaction() as conn:
        user_id = await _user_id(conn, login)
        groups = await (
            _all_groups(conn, new.permission)
            if new.all_queues
            else _queue_groups(conn, new.queues, new.permission)
        )
        email = new.email.lower()
        await conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(
                first_name=new.first_name,
                last_name=new.last_name,
                **agent_address.row_values(conn, email),
                change_time=utcnow(),
                change_by=by,
            )
        )
        await agent_address.store(conn, {user_id: email})
        await conn.execute(delete(group_user).where(group_user.c.user_id == user_id))
        await _grant(conn, user_id, groups, new.admin, by)


async def rename(
    db: Database, login: str, first_name: str, last_name: str, admin: bool, *,
    by: int = znuny.USER_ROOT,
) -> None:  # fmt: skip
    """Change an account's name and role only (its address and queue memberships stay, as for
    an account the configuration file manages); NoSuchUser."""
    async with db.transaction() as conn:
        user_id = await _user_id(conn, login)
        await conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(first_name=first_name, last_name=last_name, change_time=utcnow(), change_by=by)
        )
        admin_row = (group_user.c.user_id == user_id, group_user.c.group_id == GROUP_ADMIN)
        await conn.execute(
            delete(group_user).where(*admin_row, group_user.c.permission_key == "rw")
        )
        if admin:
            await _grant(conn, user_id, {}, True, by)


async def _set(db: Database, login: str, by: int, **values: object) -> None:
    async with db.transaction() as conn:
        result = await conn.execute(
            update(users)
            .where(users.c.login == login)
            .values(**values, change_time=utcnow(), change_by=by)
        )
        if result.rowcount == 0:
            raise NoSuchUser(login)


async def set_password(db: Database, login: str, pw: str, *, by: int = znuny.USER_ROOT) -> None:
    """Store a new hash; NoSuchUser."""
    await _set(db, login, by, pw=pw)


async def disable(db: Database, login: str, *, by: int = znuny.USER_ROOT) -> None:
    """valid_id = 2: the account can no longer sign in; its rows stay. NoSuchUser."""
    await _set(db, login, by, valid_id=INVALID)


async def enable(db: Database, login: str, *, by: int = znuny.USER_ROOT) -> None:
    """valid_id = 1: the account can sign in again. NoSuchUser."""
    await _set(db, login, by, valid_id=VALID)


async def exists(db: Database, login: str) -> bool:
    async with db.connect() as conn:
        return await conn.scalar(select(users.c.id).where(users.c.login == login)) is not None


async def one(
    db: Database, *, login: str | None = None, user_id: int | None = None
) -> UserRow | None:
    """The account of `login` or `user_id` as `listing` shows it, or None."""
    found = await listing(db, login=login, user_id=user_id)
    return found[0] if found else None


async def listing(
    db: Database,
    *,
    login: str | None = None,
    user_id: int | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> list[UserRow]:
    """Every account but the system user (root@localhost, id 1), by login, or the one of
    `login` or `user_id`; never the hashes. A page of them: at most `limit`, logins after
    `after`."""
    u = users.c
    async with db.connect() as conn:
        email = agent_address.address(conn).label("email")
        query = select(u.id, u.login, u.first_name, u.last_name, email, u.valid_id).where(
            u.id != znuny.USER_ROOT
        )
        return await _listing(conn, query, login, user_id, after, limit)


async def _listing(
    conn: AsyncConnection,
    query: Any,
    login: str | None,
    user_id: int | None,
    after: str | None,
    limit: int | None,
) -> list[UserRow]:
    u = users.c
    if login is not None:
        query = query.where(u.login == login)
    if user_id is not None:
        query = query.where(u.id == user_id)
    if after is not None:
        query = query.where(u.login > after)
    people = (await conn.execute(query.order_by(u.login).limit(limit))).all()
    grants_query = select(group_user)
    if len(people) <= 100:  # a page or one account: only theirs (else every grant, unbound)
        grants_query = grants_query.where(group_user.c.user_id.in_([p.id for p in people]))
    grants = (await conn.execute(grants_query)).all()
    by_name = select(queue.c.name, queue.c.group_id).order_by(queue.c.name)
    queues = (await conn.execute(by_name)).all()
    managed = await ownership.owned(conn, users.name, {p.id: p.login for p in people})
    keys: dict[int, dict[int, set[str]]] = {}
    for grant in grants:
        keys.setdefault(grant.user_id, {}).setdefault(grant.group_id, set()).add(
            grant.permission_key
        )
    return [
        _row(person, keys.get(person.id, {}), queues, person.id in managed) for person in people
    ]


def _row(
    person: Any, keys: dict[int, set[str]], queues: Iterable[Any], provisioned: bool
) -> UserRow:
    access = {}
    for q in queues:
        held = keys.get(q.group_id, set())
        key = next((key for key in PERMISSIONS if key in held), None)
        if key:
            access[q.name] = key
    first, last = person.first_name or "", person.last_name or ""
    return UserRow(
        id=person.id,
        login=person.login,
        name=" ".join(part for part in (first, last) if part),
        email=agent_address.text_of(person.email),
        admin="rw" in keys.get(GROUP_ADMIN, set()),
        valid=person.valid_id == VALID,
        queues=access,
        first_name=first,
        last_name=last,
        provisioned=provisioned,
    )
