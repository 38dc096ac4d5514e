"""Answer templates beside Znuny: `queue_standard_template` has no id in Znuny 7.0 (links are
found by queue and template); pytrs links its templates there as Znuny does, and reads Znuny's
seeded ones (`schema/standard_template_repo.py`)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from pytrs.schema import standard_template_repo as templates

from .conftest import Beside

pytestmark = pytest.mark.znuny


async def test_templates_link_to_queues_without_ids(beside: Beside) -> None:
    async with beside.db.transaction() as conn:
        first = templates.TemplateValues(
            name="Thanks", text="Thank you.", queue_ids=frozenset({1, 3})
        )
        template_id = await templates.save(conn, first, by=1)
        await templates.save(
            conn,
            templates.TemplateValues(
                id=template_id, name="Thanks", text="Thank you!", queue_ids=frozenset({3, 4})
            ),
            by=1,
        )
    async with beside.db.connect() as conn:
        found = await templates.get_template(conn, template_id)
        assert found is not None and found.text == "Thank you!"
        assert set(found.queue_ids) == {3, 4}
        # Znuny's seeded 'empty answer' is linked to queues 1-4.
        assert "empty answer" in {t.name for t in await templates.for_queue(conn, 2)}
    async with beside.znuny.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT queue_id FROM queue_standard_template WHERE standard_template_id = :t "
                "ORDER BY 1"
            ),
            {"t": template_id},
        )
        assert [r[0] for r in rows] == [3, 4]
    async with beside.db.transaction() as conn:
        assert await templates.delete_template(conn, template_id)
