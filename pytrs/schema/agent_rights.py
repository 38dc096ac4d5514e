"""The group rights an agent holds: its own (`group_user`) and, beside Znuny, its roles'.

Place in the flow: the access checks — `agent_access` (the web's and API's signed-in agent,
owner lists) and `escalation_due` (who is told of an escalation) — read rights through
`held`. In pytrs's own database they are the ``group_user`` rows. Beside Znuny
(`[database] mode = "znuny"`) an agent also holds the rights of its roles, as in Znuny 7.0
(``Kernel/System/Group.pm``): ``role_user`` links agents to roles, ``group_role`` gives a role
a permission on a group where ``permission_value`` is 1, for valid roles only. The account
pages (`users_repo`) still show and edit the agent's own rows, which are what they change.

The role tables are described in `schema/znuny_tables.py`.
"""

from __future__ import annotations

from sqlalchemy import select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import FromClause

from pytrs.schema.shape import shape_of
from pytrs.schema.tables import group_user
from pytrs.schema.znuny_tables import group_role, role_user, roles

VALID = 1

_own = select(group_user.c.user_id, group_user.c.group_id, group_user.c.permission_key)
_through_roles = (
    select(role_user.c.user_id, group_role.c.group_id, group_role.c.permission_key)
    .join(group_role, group_role.c.role_id == role_user.c.role_id)
    .join(roles, roles.c.id == role_user.c.role_id)
    .where(roles.c.valid_id == VALID, group_role.c.permission_value == 1)
)
# Built once: each rights check then only binds its values.
_WITH_ROLES = union_all(_own, _through_roles).subquery("held")


def with_roles(conn: AsyncConnection) -> bool:
    """Whether agents' roles give rights here (beside Znuny: pytrs's own database has none)."""
    return shape_of(conn).znuny


def held(conn: AsyncConnection) -> FromClause:
    """Every right held, as rows (user_id, group_id, permission_key): query it as `group_user`
    (a user may hold one right twice, directly and through a role). In pytrs's own database
    `group_user` itself."""
    return _WITH_ROLES if with_roles(conn) else group_user
