"""Answer templates in the database: Znuny's `standard_template` and `queue_standard_template`.

Stores and loads plain records; it compiles no template. Place in the flow: the admins' page
(`web/admin/templates_admin.py`) checks a template's text in the responders' sandbox
(`responders.answer_templates`) before it calls `save`, and the ticket zoom offers the valid
`Answer` templates of the ticket's queue (`for_queue`) to start a reply from. A name is unique;
`save` and `delete` run in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema.database import utcnow
from pytrs.schema.tables import queue, queue_standard_template, standard_template

ANSWER = "Answer"
VALID, INVALID = 1, 2
_t = standard_template
_link = queue_standard_template


class TemplateNameTaken(ValueError):
    """Another template has that name already; the message says which."""


@dataclass(frozen=True, slots=True)
class StandardTemplate:
    id: int
    name: str
    text: str
    content_type: str
    template_type: str
    comments: str
    valid: bool
    queue_ids: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class TemplateValues:
    """What an admin edits; `id` None creates a new template."""

    name: str
    text: str
    content_type: str = "text/plain"
    comments: str = ""
    valid: bool = True
    queue_ids: frozenset[int] = frozenset()
    template_type: str = ANSWER
    id: int | None = None


async def list_templates(conn: AsyncConnection) -> list[StandardTemplate]:
    """Every template by name, with the queues it is assigned to."""
    links: dict[int, set[int]] = {}
    for r in await conn.execute(select(_link.c.standard_template_id, _link.c.queue_id)):
        links.setdefault(int(r.standard_template_id), set()).add(int(r.queue_id))
    rows = await conn.execute(select(_t).order_by(_t.c.name))
    return [_record(r, links.get(int(r.id), set())) for r in rows]


async def get_template(conn: AsyncConnection, template_id: int) -> StandardTemplate | None:
    row = (await conn.execute(select(_t).where(_t.c.id == template_id))).first()
    if row is None:
        return None
    queue_ids = await conn.execute(
        select(_link.c.queue_id).where(_link.c.standard_template_id == template_id)
    )
    return _record(row, {int(q) for q in queue_ids.scalars()})


def _record(r: Row[Any], queue_ids: Collection[int]) -> StandardTemplate:
    return StandardTemplate(
        id=int(r.id), name=r.name, text=r.text or "", content_type=r.content_type or "text/plain",
        template_type=r.template_type or ANSWER, comments=r.comments or "",
        valid=r.valid_id == VALID, queue_ids=frozenset(queue_ids),
    )  # fmt: skip


async def for_queue(
    conn: AsyncConnection, queue_id: int, template_type: str = ANSWER
) -> list[StandardTemplate]:
    """The valid templates of `template_type` assigned to queue `queue_id`, by name."""
    rows = await conn.execute(
        select(_t)
        .join(_link, _link.c.standard_template_id == _t.c.id)
        .where(_link.c.queue_id == queue_id, _t.c.valid_id == VALID,
               _t.c.template_type == template_type)
        .order_by(_t.c.name)
    )  # fmt: skip
    return [_record(r, {queue_id}) for r in rows]


async def save(conn: AsyncConnection, values: TemplateValues, *, by: int) -> int:
    """Create or update a template and set its queues; returns its id.

    Raises TemplateNameTaken, or LookupError when `values.id` names no template."""
    name = " ".join(values.name.split())
    clash = await conn.execute(
        select(_t.c.id).where(func.lower(_t.c.name) == name.lower(), _t.c.id != (values.id or 0))
    )
    if clash.first() is not None:
        raise TemplateNameTaken(f"a template named {name!r} exists already")
    now = utcnow()
    columns = {
        "name": name, "text": values.text, "content_type": values.content_type,
        "template_type": values.template_type, "comments": values.comments[:250],
        "valid_id": VALID if values.valid else INVALID, "change_time": now, "change_by": by,
    }  # fmt: skip
    if values.id is None:
        result = await conn.execute(
            insert(_t).values(create_time=now, create_by=by, **columns).returning(_t.c.id)
        )
        template_id = int(result.scalar_one())
    else:
        template_id = values.id
        done = await conn.execute(update(_t).where(_t.c.id == template_id).values(**columns))
        if done.rowcount == 0:
            raise LookupError(f"no template with id {template_id}")
    await _assign(conn, template_id, values.queue_ids, by=by)
    return template_id


async def _assign(
    conn: AsyncConnection, template_id: int, queue_ids: Collection[int], *, by: int
) -> None:
    """Make the template's queues exactly `queue_ids` (unknown queue ids are left out)."""
    known = set((await conn.execute(select(queue.c.id))).scalars())
    wanted = {q for q in queue_ids if q in known}
    await conn.execute(delete(_link).where(_link.c.standard_template_id == template_id))
    if wanted:
        now = utcnow()
        await conn.execute(
            insert(_link),
            [
                {"queue_id": q, "standard_template_id": template_id, "create_time": now,
                 "create_by": by, "change_time": now, "change_by": by}
                for q in sorted(wanted)
            ],
        )  # fmt: skip


async def delete_template(conn: AsyncConnection, template_id: int) -> bool:
    """Delete a template and its queue assignments; False when there was none."""
    await conn.execute(delete(_link).where(_link.c.standard_template_id == template_id))
    done = await conn.execute(delete(_t).where(_t.c.id == template_id))
    return bool(done.rowcount)
