"""The `[web]` keys: checked when the file is read, so `config check` refuses what `run` would."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytrs.config import ConfigError, parse_config

from ..test_cli_errors import cli, one_line


def test_web_configuration_keys() -> None:
    config = parse_config(
        {"web": {"session_idle_minutes": 30, "session_max_hours": 8,
                 "trusted_proxies": ["10.0.0.0/8", "::1"]}},
        environ={},
    )  # fmt: skip
    assert config.web.session_idle_minutes == 30 and config.web.session_max_hours == 8
    assert config.web.trusted_proxies == ("10.0.0.0/8", "::1")
    with pytest.raises(ConfigError) as refused:
        parse_config(
            {"web": {"session_idle_minutes": 0, "trusted_proxies": ["10.0.0.1/8", "proxy"]}},
            environ={},
        )
    errors = refused.value.errors
    assert any(e.startswith("web.session_idle_minutes: must be at least 1") for e in errors)
    assert any(e.startswith("web.trusted_proxies[0]:") and "host bits" in e for e in errors)
    assert any(e.startswith("web.trusted_proxies[1]:") for e in errors)


def test_trusted_proxies_from_the_environment() -> None:
    config = parse_config({}, environ={"PYTRS_WEB_TRUSTED_PROXIES": "10.0.0.0/8,::1"})
    assert config.web.trusted_proxies == ("10.0.0.0/8", "::1")


def test_config_check_and_run_refuse_a_bad_web_key(tmp_path: Path) -> None:
    config = tmp_path / "pytrs.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/never.db"\n'
        '[web]\ntrusted_proxies = ["proxy.example"]\n'
    )
    for command in (["config", "check"], ["run"]):
        one_line(cli(*command, "--config", str(config)), 2, "web.trusted_proxies[0]")
