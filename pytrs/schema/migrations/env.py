"""Alembic environment: runs migrations on the connection pytrs hands over (see migrate.py).

pytrs never runs Alembic from an ini file with its own engine: `pytrs db upgrade` opens the
configured database (with its dialect set-up and schema) and passes the connection in.
"""

from __future__ import annotations

from alembic import context

from pytrs.schema.migrate import include_name
from pytrs.schema.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
