"""Provisioning at start: the configuration's rows made to match it, each part checked by the
floor that owns it.

Place in the flow: the daemon calls `provision` after the schema check and before any service
starts. The `[[auto_responses]]` are read and checked by the responders
(`responses.specs_from_config`: body files read, templates compiled), the `[[calendars]]` by
`pytrs.calendars` (holiday files and country holidays expanded into a definition), then
`schema.provision` stores them with the queues, SLAs, system addresses, agents and mail
accounts in one transaction. Storage compiles nothing: this is the one place where they meet.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pytrs.calendars import CalendarError, definition_from_config
from pytrs.config import Config, ConfigError
from pytrs.config.crosscheck import config_warnings
from pytrs.responders.responses import specs_from_config
from pytrs.schema.database import Database
from pytrs.schema.provision import provision_rows

log = logging.getLogger(__name__)


async def provision(db: Database, config: Config) -> None:
    """Make the rows the configuration owns match it; raises ConfigError naming every bad key
    (a body file, a template, a sender, a holidays file gone since `config check`)."""
    for warning in config_warnings(config):
        log.warning("configuration: %s", warning)
    await provision_rows(
        db, config, auto_responses=specs_from_config(config), calendars=calendar_definitions(config)
    )


def calendar_definitions(config: Config) -> dict[str, dict[str, Any]]:
    """Each `[[calendars]]` entry's definition, by name; relative holiday files are looked up
    next to the configuration file (the current directory for the built-in defaults). Raises
    ConfigError naming each calendar that cannot be expanded."""
    base_dir = Path(config.source).resolve().parent if config.source else Path.cwd()
    definitions, errors = {}, []
    for index, calendar in enumerate(config.calendars):
        try:
            definitions[calendar.name] = definition_from_config(calendar, base_dir)
        except CalendarError as exc:
            errors.append(f"calendars[{index}]: {exc}")
    if errors:
        raise ConfigError(errors, config.source)
    return definitions
