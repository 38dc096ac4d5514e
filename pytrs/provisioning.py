"""Provisioning at start: the configuration's rows made to match it, each part checked by the
floor that owns it.

Place in the flow: the daemon calls `provision` after the schema check and before any service
starts. The `[[auto_responses]]` are read and checked by the responders
(`responses.specs_from_config`: body files read, templates compiled), then `schema.provision`
stores them with the queues, system addresses, agents and mail accounts in one transaction.
Storage compiles nothing: this is the one place where the two meet.
"""

from __future__ import annotations

from pytrs.config import Config
from pytrs.responders.responses import specs_from_config
from pytrs.schema.database import Database
from pytrs.schema.provision import provision_rows


async def provision(db: Database, config: Config) -> None:
    """Make the rows the configuration owns match it; raises ConfigError naming every bad key
    (a body file, a template, a sender)."""
    await provision_rows(db, config, auto_responses=specs_from_config(config))
