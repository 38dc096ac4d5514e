"""Queue access of the configuration's `[[agents]]`: `rw` rows in Znuny's `group_user`.

Place in the flow: `provision` calls `sync_agent_groups` at start, after the agents' `users`
rows. An agent gets `rw` on the group of each queue it names (`queue.group_id`, so queues that
share a group share access). The file owns only the rows it inserted: one `provisioned_row`
per agent (kind `group_user`, the user's id, key "login:group ids"), so a later start removes
the rows of queues the file no longer names for it, and of agents it no longer names, and
never a row made by `pytrs users` or by hand, even on a group the file also names.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.config import Config
from pytrs.schema import ownership
from pytrs.schema.database import utcnow
from pytrs.schema.tables import group_user, provisioned_row, queue, users

KIND = "group_user"
RW = "rw"


def _key(login: str, groups: set[int]) -> str:
    return f"{login}:{','.join(str(g) for g in sorted(groups))}"


def _groups(key: str) -> set[int]:
    listed = key.rpartition(":")[2]
    return {int(g) for g in listed.split(",") if g}


async def sync_agent_groups(conn: AsyncConnection, config: Config) -> None:
    """Give each configured agent `rw` on its queues' groups; take back what the file gave
    and no longer names."""
    user_ids = {r.login: r.id for r in await conn.execute(select(users.c.login, users.c.id))}
    logins = {i: login for login, i in user_ids.items()}
    queue_groups = dict((await conn.execute(select(queue.c.name, queue.c.group_id))).all())
    records = (
        await conn.execute(
            select(provisioned_row.c.row_id, provisioned_row.c.row_key).where(
                provisioned_row.c.kind == KIND
            )
        )
    ).all()
    # A record counts only while its user still has the login it was made for.
    given = {
        r.row_id: _groups(r.row_key)
        for r in records
        if r.row_id in logins and r.row_key.startswith(f"{logins[r.row_id]}:")
    }
    held = {(g.user_id, g.group_id) for g in await conn.execute(
        select(group_user.c.user_id, group_user.c.group_id).where(group_user.c.permission_key == RW)
    )}  # fmt: skip
    owned: dict[int, str] = {}
    for agent in config.agents:
        user_id = user_ids[agent.login]
        wanted = {queue_groups[name] for name in agent.queues if name in queue_groups}
        before = given.pop(user_id, set())
        await _take_back(conn, user_id, before - wanted)
        new = {g for g in wanted - before if (user_id, g) not in held}
        if new:
            now = utcnow()
            audit = {"create_time": now, "create_by": 1, "change_time": now, "change_by": 1}
            await conn.execute(
                group_user.insert(),
                [{"user_id": user_id, "group_id": g, "permission_key": RW, **audit} for g in new],
            )
        owned[user_id] = _key(agent.login, (before & wanted) | new)
    # Agents the file no longer names (retired by `provision`): their rows from the file go.
    for user_id, groups in given.items():
        await _take_back(conn, user_id, groups)
    await ownership.disown(conn, KIND, [r.row_id for r in records if r.row_id not in owned])
    await ownership.own(conn, KIND, owned)


async def _take_back(conn: AsyncConnection, user_id: int, groups: set[int]) -> None:
    if groups:
        await conn.execute(
            delete(group_user).where(
                group_user.c.user_id == user_id,
                group_user.c.group_id.in_(groups),
                group_user.c.permission_key == RW,
            )
        )
