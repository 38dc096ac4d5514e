"""The web service of `pytrs run`: uvicorn serving the app inside the daemon's event loop.

Place in the flow: the daemon binds the `[web] listen` socket (`bind`, so that a port in use is
the same one-line start-up error as for SMTP), runs `WebService.serve` as one of its named
tasks and, on shutdown, calls `stop`. The daemon owns the signals, the database and the
logging: uvicorn installs no signal handlers, configures no logging and keeps no access log;
its proxy-header rewriting is off because `[web] trusted_proxies` decides whom to believe.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette

from pytrs.config import Config
from pytrs.schema.database import Database
from pytrs.web.ops import OpsContext

# In-flight requests get this long to finish at shutdown before their connections close.
GRACEFUL_SECONDS = 5


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: the daemon's handlers stay installed and
    stop the web service through `should_exit`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebStartError(Exception):
    """The web app could not start (its start-up needs the database)."""


def bind(address: tuple[str, int] | str) -> socket.socket:
    """A listening socket for `(host, port)` or a unix socket path. Raises OSError."""
    if isinstance(address, str):
        return _bind_unix(address)
    host, port = address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=128)
    sock.setblocking(False)
    return sock


def _bind_unix(path: str) -> socket.socket:
    # A socket file left by a daemon that died is replaced, as asyncio does for SMTP/LMTP;
    # any other file in the way is an error.
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class WebService:
    """The app and its uvicorn server for one bound socket (the web view's, or the ops
    endpoints' of `[web] metrics_listen`)."""

    def __init__(
        self,
        config: Config,
        db: Database,
        sock: socket.socket,
        *,
        wake_sender: Callable[..., None] | None = None,
        ops_context: OpsContext | None = None,
        app: Starlette | None = None,
    ) -> None:
        """Serve `app`, or by default the web view's (`create_app`)."""
        self.sock = sock
        if app is None:
            # Imported here: the web view's pages and the API's models cost a daemon that
            # serves neither (a gateway, a worker child) about 12 MB of resident memory.
            from pytrs.web.app import create_app

            app = create_app(config, db, wake_sender=wake_sender, ops_context=ops_context)
        self.app = app
        settings = uvicorn.Config(
            self.app, lifespan="on", log_config=None, access_log=False, proxy_headers=False,
            server_header=False, timeout_graceful_shutdown=GRACEFUL_SECONDS,
        )  # fmt: skip
        self.server = _Server(settings)

    @property
    def sockname(self) -> Any:
        return self.sock.getsockname()

    async def serve(self) -> None:
        """Serve until `stop`. Raises WebStartError when the app's start-up fails."""
        try:
            await self.server.serve(sockets=[self.sock])
        except SystemExit as exc:
            # uvicorn exits the process when the app's start-up fails (the reason is already
            # logged); in the daemon that must be an error of this service instead.
            raise WebStartError("the web view could not start (see the log above)") from exc
        finally:
            self.sock.close()

    def request_stop(self) -> None:
        """Stop accepting and end `serve` once requests in flight are done (those still
        running after `GRACEFUL_SECONDS` are cut); the daemon awaits the task."""
        self.server.should_exit = True
