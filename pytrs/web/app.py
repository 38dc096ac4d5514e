"""The web application: one factory that assembles routes, middleware and error pages.

Place in the flow: the daemon's web service (`service.py`) serves `create_app(...)` with uvicorn
in the daemon's own event loop; the tests serve it through httpx's ASGI transport. The
database belongs to the daemon (opened and closed there); the app's start-up (`lifespan`) only
loads what needs the database: the session signing key, shared through `system_data` by every
daemon on the database, and the runtime secrets the ticket service composes mail with.

What pages find on `request.app.state`: `config`, `db`, `tickets` (a `TicketService`),
`wake_sender` (call it after committing outbox rows, or None), `clock` (seconds since the
epoch; tests pass their own), plus the session codec, proxies and login throttle, and what
the ops endpoints read (`ops.install`: `/healthz`, `/readyz`, `/metrics`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from pytrs.config import Config
from pytrs.config.listen import listen_address
from pytrs.schema.database import Database
from pytrs.schema.system_data import ensure_secret, with_runtime_secrets
from pytrs.tickets.service import TicketService
from pytrs.web import ops
from pytrs.web.errors import http_error
from pytrs.web.guards import CsrfCheck, ErrorPage, SecurityHeaders
from pytrs.web.proxies import Proxies
from pytrs.web.request_metrics import RequestMetrics
from pytrs.web.routes import ROUTES
from pytrs.web.sessions import SessionCodec
from pytrs.web.signin import SessionMiddleware
from pytrs.web.throttle import LoginThrottle

SESSION_KEY_NAME = "pytrs.web.session_key"

Clock = Callable[[], float]


def create_app(
    config: Config,
    db: Database,
    *,
    wake_sender: Callable[..., None] | None = None,
    clock: Clock = time.time,
    ops_context: ops.OpsContext | None = None,
) -> Starlette:
    """The Starlette app of the web view over `db`. Serve it with its lifespan on (uvicorn's
    `lifespan="on"`, or `app.router.lifespan_context(app)` in tests)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        key = await ensure_secret(db, SESSION_KEY_NAME)
        app.state.session_codec = SessionCodec(key)
        app.state.config = await with_runtime_secrets(db, config)
        app.state.tickets = TicketService.from_config(app.state.config)
        yield

    app = Starlette(
        routes=[*ops.routes_for(config), *ROUTES],
        middleware=[
            Middleware(RequestMetrics),
            Middleware(SecurityHeaders),
            Middleware(ErrorPage),
            Middleware(SessionMiddleware),
            Middleware(CsrfCheck),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.db = db
    app.state.wake_sender = wake_sender
    app.state.clock = clock
    app.state.proxies = Proxies(
        config.web.trusted_proxies,
        unix_socket=bool(config.web.listen) and isinstance(listen_address(config.web.listen), str),
    )
    app.state.throttle = LoginThrottle()
    ops.install(app, config, db, ops_context, dedicated=False)
    return app
