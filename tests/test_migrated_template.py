"""The suite's migrated databases (tests/migrated.py) are what `pytrs db upgrade` makes: the
same tables, columns, indexes, constraints and seed rows, at head, on this run's engine."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from pytrs.config import Config
from pytrs.schema import migrate
from pytrs.schema.database import create_database
from pytrs.schema.tables import Base

from . import migrated


def _snapshot(conn: Connection) -> dict[str, Any]:
    found = inspect(conn)
    tables = {}
    for name in sorted(found.get_table_names()):
        tables[name] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in found.get_columns(name)
            ],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), i["unique"]) for i in found.get_indexes(name)
            ),
            "unique": sorted(
                (u["name"] or "", tuple(u["column_names"]))
                for u in found.get_unique_constraints(name)
            ),
            "foreign_keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"])
                for f in found.get_foreign_keys(name)
            ),
            "primary_key": tuple(found.get_pk_constraint(name)["constrained_columns"]),
        }
    rows = {}
    for table in Base.metadata.sorted_tables:
        # Times of the seed rows are when each database was migrated.
        columns = [c for c in table.columns if not c.name.endswith(("_time", "_at"))]
        rows[table.name] = sorted(
            (tuple(str(v) for v in r) for r in conn.execute(select(*columns))), key=repr
        )
    return {"tables": tables, "rows": rows}


async def test_a_copy_is_what_a_real_upgrade_makes(tmp_path: Any, config: Config) -> None:
    real_settings = config.database
    if config.database.url.startswith("sqlite"):
        copy_settings = dataclasses.replace(
            config.database, url=f"sqlite+aiosqlite:///{tmp_path / 'copy.db'}"
        )
    else:  # a second schema: the test's own is for the real upgrade
        copy_settings = dataclasses.replace(config.database, schema=f"{config.database.schema}_c")
    real, copy = create_database(real_settings), create_database(copy_settings)
    url = real_settings.url
    try:
        if copy_settings.schema and copy_settings.schema != real_settings.schema:
            async with real.connect() as conn:
                await conn.exec_driver_sql(migrated.create_schema_sql(copy_settings.schema, url))
                await conn.commit()
        await migrate.upgrade(real)
        for _ in range(2):  # the first copy may be the one that builds the template
            await migrated.upgrade(copy)
            assert await migrate.is_at_head(copy) == await migrate.is_at_head(real)
            async with real.connect() as a, copy.connect() as b:
                expected = await a.run_sync(_snapshot)
                assert await b.run_sync(_snapshot) == expected
            assert len(expected["tables"]) > 40 and len(expected["rows"]["ticket_state"]) > 5
            await copy.close()
            if copy_settings.schema and copy_settings.schema != real_settings.schema:
                async with real.connect() as conn:
                    await conn.exec_driver_sql(migrated.drop_schema_sql(copy_settings.schema, url))
                    await conn.exec_driver_sql(
                        migrated.create_schema_sql(copy_settings.schema, url)
                    )
                    await conn.commit()
            else:
                (tmp_path / "copy.db").unlink()
            copy = create_database(copy_settings)
    finally:
        await copy.close()
        await real.close()
        if copy_settings.schema and copy_settings.schema != real_settings.schema:
            async with real.connect() as conn:
                await conn.exec_driver_sql(migrated.drop_schema_sql(copy_settings.schema, url))
                await conn.commit()
            await real.close()
