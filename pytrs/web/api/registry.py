"""The API's resource modules, and the Starlette mount at /api/v1 serving their operations.

Place in the flow: `web/routes.py` mounts `mount()`. A resource module exposes
`api = Operations(tag=…)` (see `operations.py`); add it with ONE line in `MODULES`. Beside the
operations the mount serves, without a token: the OpenAPI document (`/openapi.json`), its
rendering (`/docs`) and the problem types (`/problems`, the target of every problem's `type`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from pytrs.web.api import docs, openapi
from pytrs.web.api.operations import Operation, Operations, endpoint
from pytrs.web.api.resources import (
    accounts,
    articles,
    attachments,
    filter_bench,
    filters,
    inbox,
    names,
    outbox,
    queues,
    tickets_read,
    tickets_write,
    users,
)

MODULES: list[ModuleType] = [
    queues,
    names,
    tickets_read,
    tickets_write,
    articles,
    attachments,
    users,  # admin resources
    filters,
    filter_bench,
    inbox,
    outbox,
    accounts,
]
PREFIX = "/api/v1"


def operations() -> list[Operation]:
    """Every declared operation, in MODULES order. Raises ValueError on a path and method
    declared twice."""
    found: list[Operation] = []
    seen: set[tuple[str, str]] = set()
    for module in MODULES:
        api = getattr(module, "api", None)
        if not isinstance(api, Operations):
            raise ValueError(f"{module.__name__} has no `api = Operations(...)`")
        for op in api.operations:
            key = (op.method, openapi.openapi_path(op.path))
            if key in seen:
                raise ValueError(f"{op.method} {op.path} is declared twice")
            seen.add(key)
            found.append(op)
    return found


def tag_descriptions() -> dict[str, str]:
    return {m.api.tag: m.api.description for m in MODULES}


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, made once per process (the declarations never change)."""
    document = openapi.document(operations(), version=_version())
    described = tag_descriptions()
    for tag in document["tags"]:
        if described.get(tag["name"]):
            tag["description"] = described[tag["name"]]
    return document


def _version() -> str:
    try:
        return version("pytrs")
    except PackageNotFoundError:
        return "0"


async def openapi_json(request: Request) -> Response:
    return JSONResponse(openapi_document())


def mount() -> Mount:
    """/api/v1 with the public pages first (no operation path may shadow them)."""
    routes: list[BaseRoute] = [
        Route("/openapi.json", openapi_json, methods=["GET"], name="api_openapi"),
        Route("/docs", docs.docs_page(openapi_document), methods=["GET"], name="api_docs"),
        Route("/problems", docs.problems_page, methods=["GET"], name="api_problems"),
    ]
    return Mount(PREFIX, routes=routes + operation_routes(operations()), name="api")


def operation_routes(ops: list[Operation]) -> list[BaseRoute]:
    """One route per path, taking the methods of its operations (so that a 405 lists them all
    in `Allow`), literal paths before those with a parameter in the same place (so that
    /filters/test is not taken for /filters/{name}). Tests mount test-only operations with
    this, under a prefix of their own."""
    by_path: dict[str, list[Operation]] = {}
    for op in ops:
        by_path.setdefault(op.path, []).append(op)
    ordered = sorted(by_path.items(), key=lambda item: _specificity(item[0]))
    return [
        Route(path, _by_method(group), methods=[op.method for op in group], name=f"api:{path}")
        for path, group in ordered
    ]


def _specificity(path: str) -> list[int]:
    return [1 if part.startswith("{") else 0 for part in path.strip("/").split("/")]


def _by_method(group: list[Operation]) -> Callable[[Request], Awaitable[Response]]:
    endpoints = {op.method: endpoint(op) for op in group}
    if "GET" in endpoints:
        endpoints["HEAD"] = endpoints["GET"]

    async def by_method(request: Request) -> Response:
        return await endpoints[request.method](request)

    return by_method
