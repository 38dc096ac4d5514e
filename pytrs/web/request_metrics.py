"""HTTP request metrics: every response counted by route template, method and status, timed.

Place in the flow: the outermost middleware of the web app (and of the ops-only app), so the
time includes every other middleware. The label is the template of the route that answered
("/tickets/{tn}", never the ticket number itself), found after the response by matching the
request against the app's routes as Starlette's router does; a path no route has is
"unmatched", so scanners cannot grow the number of series.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pytrs.metrics.registry import HTTP_DURATION, HTTP_REQUESTS

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        original = dict(scope)  # the router adds to `scope` as it matches
        status = 500  # an exception before the response started is the 500 page

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = route_template(scope["app"].routes, original) if "app" in scope else UNMATCHED
            method = scope["method"] if scope["method"] in METHODS else "other"
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_DURATION.labels(route, method).observe(time.perf_counter() - started)


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The path template of the route that `scope` reaches, or "unmatched"."""
    partial = ""
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            inner = route.routes
            found = route_template(inner, {**scope, **child}) if inner else UNMATCHED
            template = route.path + (found if found != UNMATCHED else "/{path}")
        else:
            template = str(getattr(route, "path", UNMATCHED))
        if match is Match.FULL:
            return template
        partial = partial or template  # the path matched, the method did not (405)
    return partial or UNMATCHED
