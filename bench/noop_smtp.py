"""The transport ceiling of the ingest benchmark: an aiosmtpd server that answers 250 to
everything and stores nothing, in a process of its own, on the event loop the daemon would run.

`bench/ingest.py` drives it with the same client, corpus and connection count as the daemon, in
the same run, so that the daemon's rate can be read as a share of what Python's SMTP stack on
this machine can take at all (issue 16). Imported by the bench scripts (run as
`python bench/NAME.py`, which puts this directory on the path), and run by them as
`python bench/noop_smtp.py --loop asyncio|uvloop`: it prints its port, serves until SIGTERM,
then prints how many messages it was sent. Not part of pytrs.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LOOPS = ("asyncio", "uvloop")
HOSTNAME = "noop.bench"
# The daemon's own session settings (gateway/smtp.py `start_server`): same limits, same parsing.
DATA_SIZE_LIMIT = 26214400
SESSION_TIMEOUT = 300


def daemon_loop(config: Path, env: Mapping[str, str]) -> str:
    """The event loop `pytrs run` picks with this configuration file and environment: the rule
    of `pytrs.daemon.run_daemon` ("auto" and "uvloop" run uvloop when it is importable)."""
    from pytrs.config import load_config

    setting = load_config(config, env).daemon.event_loop
    if setting in ("auto", "uvloop") and importlib.util.find_spec("uvloop") is not None:
        return "uvloop"
    return "asyncio"


class NoopServer:
    """The no-op server as a child process; a context manager that yields (host, port)."""

    def __init__(self, loop: str, env: Mapping[str, str]) -> None:
        self.loop = loop
        self.env = dict(env)
        self.received = -1  # the server's count, known after exit
        self._popen: subprocess.Popen[str] | None = None

    def __enter__(self) -> tuple[str, int]:
        cmd = [sys.executable, __file__, "--loop", self.loop]
        self._popen = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, text=True)
        assert self._popen.stdout is not None
        line = self._popen.stdout.readline()
        if not line.strip().isdigit():
            self._popen.kill()
            raise RuntimeError(f"the no-op SMTP server did not start (said {line!r})")
        return "127.0.0.1", int(line)

    def __exit__(self, *exc: object) -> None:
        assert self._popen is not None
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGTERM)
        try:
            out, _ = self._popen.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.communicate()
            return
        text = out.strip()
        self.received = int(text) if text.isdigit() else -1


class Noop:
    """aiosmtpd handler: every recipient is accepted (aiosmtpd's default), every DATA gets 250."""

    count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        Noop.count += 1
        return "250 2.0.0 Ok: queued"


async def serve() -> None:
    from aiosmtpd.smtp import SMTP

    def factory() -> SMTP:
        return SMTP(
            Noop(), hostname=HOSTNAME, ident="noop ESMTP", decode_data=False,
            enable_SMTPUTF8=True, data_size_limit=DATA_SIZE_LIMIT, timeout=SESSION_TIMEOUT,
        )  # fmt: skip

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()
    print(Noop.count, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(serve())
    else:
        asyncio.run(serve())


if __name__ == "__main__":
    main()
