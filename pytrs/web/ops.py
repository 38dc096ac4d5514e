"""The ops endpoints: `/healthz`, `/readyz` and `/metrics`, for load balancers and Prometheus.

Place in the flow: `app.create_app` mounts `routes_for(config)` and calls `install`; with
`[web] metrics_listen` set the main app mounts none, and the daemon serves `create_ops_app`
(these three routes alone) on that listener instead. On whichever listener serves them, only
clients in `[web] metrics_allow` (default: loopback) see them; anyone else gets the 404 of a
path that does not exist. The client address is `proxies.py`'s: behind `[web]
trusted_proxies`, the forwarded one. A unix-socket peer without a forwarded address is
allowed on the dedicated listener (the socket file's permissions decide who connects) and
refused on the main one (whose proxy may be public).

- `/healthz`: 200 whenever the process answers; touches nothing.
- `/readyz`: 200 or 503 with each check and its reason (`readiness.py`).
- `/metrics`: the Prometheus text format (`metrics.exposition`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pytrs.config import Config
from pytrs.config.listen import listen_address
from pytrs.metrics.exposition import Exposition
from pytrs.runtime.services import ServiceStates
from pytrs.schema.database import Database
from pytrs.web.proxies import Network, Proxies
from pytrs.web.readiness import Readiness
from pytrs.web.request_metrics import RequestMetrics


@dataclass(frozen=True, slots=True)
class OpsContext:
    """What the daemon tells the ops endpoints about its process."""

    services: ServiceStates | None = None
    children_dir: str = ""  # where worker child processes keep their counters


class Allowed:
    """Whether a request may see the ops endpoints (`[web] metrics_allow`)."""

    def __init__(self, networks: tuple[str, ...], proxies: Proxies, *, dedicated: bool) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n.strip()) for n in networks
        )
        self.proxies = proxies
        self.dedicated = dedicated

    def __call__(self, request: Request) -> bool:
        address = self.proxies.client_address(request.scope)
        if not address:
            return self.dedicated
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks)


def _guard(request: Request) -> None:
    if not request.app.state.ops_allowed(request):
        raise HTTPException(404)


async def healthz(request: Request) -> Response:
    _guard(request)
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    _guard(request)
    readiness: Readiness = request.app.state.readiness
    checks = await readiness.checks()
    ready = all(c.ok for c in checks)
    return JSONResponse(readiness.document(checks), status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    _guard(request)
    exposition: Exposition = request.app.state.exposition
    await exposition.refresh()
    return Response(exposition.render(), media_type=CONTENT_TYPE_LATEST)


ROUTES = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]


def routes_for(config: Config) -> list[Route]:
    """The ops routes of the main app: none when `[web] metrics_listen` serves them."""
    return [] if config.web.metrics_listen else list(ROUTES)


def install(
    app: Starlette, config: Config, db: Database, ops: OpsContext | None, *, dedicated: bool
) -> None:
    """Give `app` what the ops endpoints read from `app.state`."""
    ops = ops or OpsContext()
    listen = config.web.metrics_listen if dedicated else config.web.listen
    proxies = Proxies(
        config.web.trusted_proxies,
        unix_socket=bool(listen) and isinstance(listen_address(listen), str),
    )
    app.state.ops_allowed = Allowed(config.web.metrics_allow, proxies, dedicated=dedicated)
    app.state.readiness = Readiness(db, ops.services)
    accounts = [a.name for a in config.mail_accounts]
    app.state.exposition = Exposition(db, accounts, ops.children_dir, ops.services)


def create_ops_app(config: Config, db: Database, ops: OpsContext | None = None) -> Starlette:
    """The app of the `[web] metrics_listen` listener: the ops endpoints and nothing else."""
    app = Starlette(routes=list(ROUTES), middleware=[Middleware(RequestMetrics)])
    install(app, config, db, ops, dedicated=True)
    return app
