"""The web service inside `pytrs run`: uvicorn in the daemon's loop, next to SMTP or alone."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytrs.daemon import Daemon, StartupError
from pytrs.schema.database import Database

from ..conftest import make_config
from ..test_cli_errors import ROOT, cli


def _web_config(database_settings: dict[str, Any], listen: str = "127.0.0.1:0", **more: Any) -> Any:
    return make_config(database_settings, web={"listen": listen}, **more)


async def _get(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        return await client.get(path)


async def test_run_serves_the_login_page_next_to_smtp(
    database_settings: dict[str, Any], db: Database, start_daemon: Callable[..., Any]
) -> None:
    running = await start_daemon(_web_config(database_settings))
    answer = await _get(running.port("web"), "/login")
    assert answer.status_code == 200
    assert 'name="password"' in answer.text
    assert answer.headers["x-frame-options"] == "DENY"
    assert "web on" in running.daemon._describe_services()
    smtp_port = running.port("smtp")
    assert await asyncio.to_thread(_smtp_noop, smtp_port) == 250
    assert await running.stop() == 0


def _smtp_noop(port: int) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        return client.noop()[0]


async def test_role_web_serves_only_the_web(
    database_settings: dict[str, Any], db: Database
) -> None:
    daemon = Daemon(_web_config(database_settings), roles=("web",))
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(daemon.started.wait(), 30)
    kinds = [kind for kind, _ in daemon.bound]
    assert kinds == ["web"]
    assert daemon.workers == [] and daemon.sender is None
    port = next(address[1] for kind, address in daemon.bound if kind == "web")
    assert (await _get(port, "/")).headers["location"] == "/login?next=%2F"
    daemon.request_stop()
    assert await asyncio.wait_for(task, 30) == 0
    with pytest.raises(httpx.ConnectError):  # the port is closed again
        await _get(port, "/login")


async def test_a_web_port_in_use_is_a_one_line_startup_error(
    database_settings: dict[str, Any], db: Database
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = Daemon(_web_config(database_settings, f"127.0.0.1:{port}"), roles=("web",))
        with pytest.raises(StartupError) as raised:
            await asyncio.wait_for(daemon.run(), 30)
    message = str(raised.value)
    assert message == (
        f"cannot listen for the web view on 127.0.0.1:{port}: address already in use "
        "(see web.listen)"
    )


async def test_web_on_a_unix_socket(
    database_settings: dict[str, Any], db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "web.sock"
    daemon = Daemon(_web_config(database_settings, str(path)), roles=("web",))
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(daemon.started.wait(), 30)
    transport = httpx.AsyncHTTPTransport(uds=str(path))
    async with httpx.AsyncClient(transport=transport, base_url="http://pytrs") as client:
        answer = await client.get("/login")
    assert answer.status_code == 200
    daemon.request_stop()
    assert await asyncio.wait_for(task, 30) == 0


def test_pytrs_run_serves_the_web_and_stops_on_sigint(tmp_path: Path) -> None:
    """The real command: uvicorn must not take the daemon's signals (Ctrl-C drains, exit 0)."""
    config = tmp_path / "pytrs.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/pytrs.db"\n'
        '[smtp]\nlisten = ["127.0.0.1:0"]\n[web]\nlisten = "127.0.0.1:0"\n'
    )
    assert cli("db", "upgrade", "--config", str(config)).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTRS_")}
    env["PYTHONPATH"] = str(ROOT)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "pytrs", "run", "--config", str(config)],
        stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert daemon.stderr is not None
    with daemon.stderr:
        port = 0
        for line in daemon.stderr:
            found = re.search(rb"web view listening on \('127\.0\.0\.1', (\d+)\)", line)
            port = int(found.group(1)) if found else port
            if b"pytrs started" in line and b"[worker " not in line:  # the daemon's own
                break
        answer = httpx.get(f"http://127.0.0.1:{port}/login", timeout=10)
        assert answer.status_code == 200 and 'name="password"' in answer.text
        daemon.send_signal(signal.SIGINT)
        assert daemon.wait(timeout=60) == 0
        rest = daemon.stderr.read()
    assert b"Traceback" not in rest and b"pytrs stopped" in rest
