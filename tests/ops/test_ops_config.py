"""`[web] metrics_listen` and `metrics_allow`: what `pytrs config check` refuses, `pytrs run`
refuses too (one check for both), each error naming its key; a metrics port in use is a
one-line start-up error like any other listener's."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from pytrs.config import ConfigError, load_config
from pytrs.daemon import Daemon, StartupError
from pytrs.schema.database import Database

from ..conftest import make_config
from ..test_cli import write_config
from ..test_cli_errors import cli, one_line


def test_defaults_keep_the_endpoints_on_loopback() -> None:
    web = load_config(None, {}).web
    assert web.metrics_listen == ""
    assert web.metrics_allow == ("127.0.0.0/8", "::1")


@pytest.mark.parametrize(
    ("web", "key", "why"),
    [
        ({"listen": "127.0.0.1:8080", "metrics_listen": "127.0.0.1:8080"}, "web.metrics_listen",
         "must differ from web.listen"),
        ({"metrics_listen": "nowhere"}, "web.metrics_listen", "nowhere"),
        ({"metrics_allow": ["10.0.0.0/8", "prometheus.example"]}, "web.metrics_allow[1]",
         "CIDR network"),
        ({"metrics_allow": ["10.0.0.1/8"]}, "web.metrics_allow[0]", "host bits set"),
    ],
)  # fmt: skip
def test_unusable_settings_are_refused_naming_the_key(
    database_settings: dict[str, Any], web: dict[str, Any], key: str, why: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        make_config(database_settings, web=web)
    [error] = raised.value.errors
    assert error.startswith(key) and why in error, error


def test_config_check_and_run_refuse_alike(tmp_path: Path) -> None:
    settings = {"url": f"sqlite+aiosqlite:///{tmp_path / 'pytrs.db'}"}
    extra = '[web]\nlisten = "127.0.0.1:8080"\nmetrics_listen = "127.0.0.1:8080"\n'
    path = write_config(tmp_path / "pytrs.toml", settings)
    # write_config writes its own [web]; this one replaces it.
    path.write_text(path.read_text().replace('[web]\nlisten = ""\n', "") + extra)
    one_line(cli("config", "check", "--config", str(path)), 2, "web.metrics_listen: must differ")
    one_line(cli("run", "--config", str(path)), 2, "web.metrics_listen: must differ")


async def test_a_metrics_port_in_use_is_a_one_line_startup_error(
    database_settings: dict[str, Any], db: Database
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(database_settings, web={"metrics_listen": f"127.0.0.1:{port}"})
        with pytest.raises(StartupError) as raised:
            await Daemon(config, roles=("gateway",)).run()
    assert str(raised.value) == (
        f"cannot listen for the ops endpoints on 127.0.0.1:{port}: address already in use "
        "(see web.metrics_listen)"
    )
