"""Diagnostic: the configuration loads and passes what `pytrs config check` checks.

Place in the flow: the first check of `pytrs doctor`, and the only one run before the others:
they all need a configuration, so when it does not load they are skipped (the runner says so).
Exactly the checks of `pytrs config check` (`preflight.check_startup`, `config_warnings`), so
that both commands agree.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from pytrs.config import Config, ConfigError, load_config
from pytrs.config.crosscheck import config_warnings
from pytrs.config.load import ENV_CONFIG, find_config_file
from pytrs.diagnostics.findings import Finding, fail, ok, warn
from pytrs.preflight import check_startup

CHECK = "configuration"


def check_configuration(path: str | None, *, defaults: bool) -> tuple[Config | None, list[Finding]]:
    """The loaded configuration (None when it does not load) and what was found about it."""
    try:
        chosen = find_config_file(path, os.environ)
        if chosen is None and not defaults:
            return None, [_no_file()]
        config = load_config(path)
    except ConfigError as exc:
        where = exc.source or path or os.environ.get(ENV_CONFIG) or ""
        if where and not Path(where).exists():
            advice = "give --config the service's file (e.g. /etc/pytrs/pytrs.toml)"
        else:
            advice = f"fix {where or 'it'} (`pytrs config check` names the same keys)"
        return None, [fail(CHECK, error, advice) for error in exc.errors]
    return config, _usable(config)


def _usable(config: Config) -> list[Finding]:
    source = config.source or "the built-in defaults (--defaults)"
    try:
        check_startup(config)
    except ConfigError as exc:
        advice = f"fix it in {source}; `pytrs run` refuses to start until then"
        return [fail(CHECK, error, advice) for error in exc.errors]
    findings = [ok(CHECK, f"{source} loads and passes the start-up checks")]
    if config.source and dataclasses.replace(config, source="") == Config():
        findings.append(
            warn(
                CHECK,
                f"{config.source} sets nothing: the built-in defaults",
                "fill it in from config/pytrs.example.toml",
            )
        )
    for warning in config_warnings(config):
        findings.append(warn(CHECK, warning, "allowed, but probably not meant"))
    return findings


def _no_file() -> Finding:
    return fail(
        CHECK,
        f"no configuration file (none given with --config, ${ENV_CONFIG} is not set and "
        f"there is no pytrs.toml in {Path.cwd()})",
        "give --config /etc/pytrs/pytrs.toml (the service's), or --defaults to check the "
        "built-in defaults",
    )
