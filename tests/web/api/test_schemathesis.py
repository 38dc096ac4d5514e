"""schemathesis against a live `pytrs run`: every documented operation fuzzed through the
OpenAPI document the daemon serves, with every check (no 5xx, status codes, content types and
headers documented, responses matching their schemas, invalid data refused, auth not ignored).

The daemon is a real subprocess on a seeded database (a ticket of Support with an attachment,
the desk's agents); its tokens are made with `pytrs tokens create`: the agents' operations run
with a write token of an agent of Support, the admin operations with an administrator's admin
token. Each run is bounded (`MAX_EXAMPLES` per operation, a fixed seed) so that both take about
90 s per engine with every resource. Refusals no schema can say are left aside by
`schemathesis_hooks.py`. On a failure the assertion shows schemathesis's report: the
operation, the check and a curl line to replay.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytrs.config import Config
from pytrs.schema.database import Database
from pytrs.web.api.registry import operations

from ...test_cli_errors import ROOT
from ..zoom_support import LOOP_SECRET, Roles, deliver, realistic_mail

MAX_EXAMPLES = 15
SEED = 13
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def _toml(database: dict[str, Any]) -> str:
    schema = f'schema = "{database["schema"]}"\n' if database.get("schema") else ""
    return (
        f'[database]\nurl = "{database["url"]}"\n{schema}'
        '[smtp]\nlisten = ["127.0.0.1:0"]\nlmtp_listen = []\n'
        '[web]\nlisten = "127.0.0.1:0"\n'
        f'[outbound]\nloop_secret = "{LOOP_SECRET}"\n'
        "[agent_mail]\nnotify_new_ticket = false\nnotify_follow_up = false\n"
        + "".join(
            f'[[queues]]\nname = "{q}"\n[[system_addresses]]\naddress = "{q.lower()}@example.com"\n'
            f'queue = "{q}"\n'
            for q in ("Support", "Sales", "Billing")
        )
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTRS_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _token(config: Path, login: str, scope: str) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "pytrs", "--config", str(config), "tokens", "create",
         "--user", login, "--scope", scope],
        capture_output=True, env=_env(), timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return made.stdout.decode().strip()


class LiveDaemon:
    """`pytrs run` in a subprocess, its log in a file; `port` once it has started."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self._file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pytrs", "run", "--config", str(config)],
            stdout=self._file, stderr=subprocess.STDOUT, env=_env(),
        )  # fmt: skip

    def wait_started(self, within: float = 60) -> int:
        end = time.monotonic() + within
        while time.monotonic() < end:
            text = self.log.read_text(errors="replace")
            found = re.search(r"web view listening on \('127\.0\.0\.1', (\d+)\)", text)
            if found and re.search(r"^(?!.*\[worker ).*pytrs started", text, re.M):
                return int(found.group(1))
            assert self.process.poll() is None, f"pytrs run exited:\n{text}"
            time.sleep(0.1)
        raise AssertionError(f"pytrs run did not start:\n{self.log.read_text()}")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._file.close()
        return self.log.read_text(errors="replace")


@pytest.fixture
async def live(
    tmp_path: Path, database_settings: dict[str, Any], db: Database, config: Config, desk: Roles
) -> Any:
    await deliver(config, db, realistic_mail())
    path = tmp_path / "pytrs.toml"
    path.write_text(_toml(database_settings))
    daemon = LiveDaemon(path, tmp_path / "daemon.log")
    try:
        port = await asyncio.to_thread(daemon.wait_started)
        yield path, port
    finally:
        log = daemon.stop()
        assert "Traceback" not in log, log


def _schemathesis(
    url: str, token: str, report: Path, selection: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCHEMATHESIS), "run", url, "--checks", "all", "-H", f"Authorization: Bearer {token}",
         "--include-by", selection,
         "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1",
         "--suppress-health-check", "all", "--request-timeout", "30",
         "--report", "junit", "--report-dir", str(report), "--output-truncate", "false"],
        capture_output=True, text=True, timeout=600, check=False, env=_hooks_env(),
        cwd=report,  # its cache (.schemathesis/) stays out of the working tree
    )  # fmt: skip


def _hooks_env() -> dict[str, str]:
    env = dict(os.environ)
    env["SCHEMATHESIS_HOOKS"] = "tests.web.api.schemathesis_hooks"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


async def test_schemathesis_finds_nothing(live: Any, desk: Roles, tmp_path: Path) -> None:
    """The agents' operations as an agent of Support with a write token, the administration
    as an administrator with an admin token (each operation once: the run stays short)."""
    config, port = live
    url = f"http://127.0.0.1:{port}/api/v1/openapi.json"
    runs = [(desk.rw, "write", '/x-pytrs-access != "admin"')]
    if any(op.access == "admin" for op in operations()):
        runs.append((desk.admin, "admin", '/x-pytrs-access == "admin"'))
    for login, scope, selection in runs:
        token = await asyncio.to_thread(_token, config, login, scope)
        started = time.monotonic()
        run = await asyncio.to_thread(_schemathesis, url, token, tmp_path, selection)
        took = time.monotonic() - started
        assert run.returncode == 0, f"schemathesis ({login}) found problems:\n{run.stdout}"
        print(f"schemathesis as {login} ({scope}): {took:.0f} s\n{run.stdout[-1500:]}")
