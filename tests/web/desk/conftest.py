"""A service desk for the ticket pages' tests: queues Support and Sales provisioned, one agent
per role (`Roles`: admin, rw and ro on Support, rw on Sales), and a ticket from a customer's
mail in Support. A test module overrides a fixture where it needs more (a relay, follow-ups).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pytrs.config import Config
from pytrs.schema.database import Database

from ..zoom_support import (
    Roles,
    deliver,
    make_roles,
    newest_ticket,
    provision_desk,
    realistic_mail,
    zoom_config,
)


@pytest.fixture
def config(database_settings: dict[str, Any]) -> Config:
    return zoom_config(database_settings)


@pytest.fixture(autouse=True)
async def provisioned(db: Database, config: Config) -> None:
    await provision_desk(db, config)


@pytest.fixture
async def roles(make_user: Callable[..., Awaitable[int]]) -> Roles:
    return await make_roles(make_user)


@pytest.fixture
async def tn(config: Config, db: Database) -> str:
    """The number of a ticket opened by a customer's mail in Support."""
    await deliver(config, db, realistic_mail())
    return (await newest_ticket(db))[1]
