"""Finding and reading the configuration file.

Place in the flow: the first thing ``pytrs run`` and the other commands do. Resolution order
(SPEC S2): an explicit path (``--config``), else ``$PYTRS_CONFIG``, else ``./pytrs.toml`` if it
exists, else the built-in defaults. The result goes to ``parse_config``.
"""

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytrs.config.errors import ConfigError
from pytrs.config.model import Config
from pytrs.config.parse import parse_config

ENV_CONFIG = "PYTRS_CONFIG"
DEFAULT_FILE = "pytrs.toml"


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Load, override from the environment (``os.environ`` if None) and validate.

    Raises ConfigError if a named file is missing or unreadable, is not valid TOML, or holds
    invalid settings.
    """
    env = os.environ if environ is None else environ
    chosen = find_config_file(path, env)
    if chosen is None:
        return parse_config({}, env)
    source = os.fspath(chosen)
    return parse_config(_read(source), env, source=source)


def find_config_file(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> str | os.PathLike[str] | None:
    """Return the file to load, or None for the built-in defaults.

    Raises ConfigError when the explicit path or ``$PYTRS_CONFIG`` names a missing file:
    silently falling back to defaults would start a daemon nobody configured.
    """
    if path is not None:
        return _existing(path, "")
    if environ.get(ENV_CONFIG):
        return _existing(environ[ENV_CONFIG], f" (from {ENV_CONFIG})")
    # Looked up at call time, relative to the current directory, never at import.
    return DEFAULT_FILE if Path(DEFAULT_FILE).is_file() else None


def _existing(path: str | os.PathLike[str], origin: str) -> str | os.PathLike[str]:
    if not Path(path).exists():
        raise ConfigError(f"{os.fspath(path)}{origin}: configuration file not found")
    return path


def _read(source: str) -> dict[str, Any]:
    try:
        with open(source, "rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: TOML syntax error: {exc}", source) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text: {exc}", source) from exc
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}", source) from exc
