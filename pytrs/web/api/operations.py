"""Declaring API operations, and running one: auth, scope, validation, serialisation.

Place in the flow: each resource module (`resources/<name>.py`) declares its operations on an
`Operations(tag=…)` with `@api.get/post/patch/put/delete(path, access=…, …)`; `registry.py`
turns every declared `Operation` into a Starlette route under /api/v1 and `openapi.py` into the
OpenAPI document. For each request the framework, in this order:

1. authenticates the bearer token (`auth.py`) → 401 `unauthorized`;
2. checks `access="admin"` (the agent must be an administrator) → 403 `forbidden`, then the
   token's scope (admin access needs `admin`, GET `read`, any other method `write`) → 403
   `insufficient-scope`; "ticket-read"/"ticket-write" are checked by the operation itself
   (answer 404 for a ticket outside the agent's queues, 403 `forbidden` for `ro` writing);
3. validates path parameters, the `query=` model and the `body=` model (`bodies.py`) → 415,
   413 (JSON over `max_body`, 1 MiB by default; multipart over 32 MiB), 422
   `validation-failed` with per-field `errors`. JSON bodies are validated strictly (JSON has
   types: `"3"` is no integer); query strings and form fields are text and validated laxly.
   Give body models `extra="forbid"` so that a misspelt field is refused, not ignored;
4. calls the operation as `handler(ctx, **path_params, query=…, body=…)`;
5. serialises what it returns (`rendering.py`): a pydantic value with `status` (naive stored
   times as UTC), a Starlette `Response` as is (`response=Binary` for downloads), nothing
   for `status=204`. `Problem` and ticket service errors become problem+json; any other
   exception is logged and answered 500 by `ErrorPage`.

Use `validation-failed` only for what the OpenAPI document can say (lengths, formats,
ranges): schemathesis holds every such refusal of a schema-valid request against the
document. A refusal that depends on the database or on meaning gets its own problem type
(`unknown-name`, `invalid-change`, or one registered in `problems.py`).

An `idempotent=True` operation runs inside the framework's transaction with its
Idempotency-Key stored in it (`idempotency.py`): always do database work through
`async with ctx.transaction() as conn`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from pytrs.config import Config
from pytrs.schema.api_tokens import scope_allows
from pytrs.schema.database import Database
from pytrs.tickets.errors import TicketError
from pytrs.tickets.model import Actor
from pytrs.tickets.service import TicketService
from pytrs.web.api import bodies, idempotency
from pytrs.web.api.auth import ApiUser, authenticate
from pytrs.web.api.forms import Upload
from pytrs.web.api.problems import PROBLEM_TYPES, Problem, from_ticket_error, problem_response
from pytrs.web.api.rendering import render

ACCESS = ("agent", "ticket-read", "ticket-write", "admin")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
JSON_LIMIT = 1024 * 1024  # a JSON body's default limit; an operation may declare `max_body`
_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-z]+))?}")

Handler = Callable[..., Awaitable[Any]]
__all__ = ["Binary", "Context", "Operation", "Operations", "Upload"]


class Binary:
    """`response=Binary`: the operation returns a Starlette Response of its own (a download)."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One declared operation (see `Operations`)."""

    method: str
    path: str  # relative to /api/v1, Starlette convertors included: "/queues/{queue_id:int}"
    handler: Handler
    tag: str
    access: str
    response: Any = None  # a pydantic model (or a type pydantic serialises), Binary or None
    status: int = 200
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    summary: str = ""
    problems: tuple[str, ...] = ()  # extra problem types the operation may answer
    idempotent: bool = False
    multipart: bool = False
    max_body: int = JSON_LIMIT
    adapter: TypeAdapter[Any] | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """The OpenAPI operationId: the handler's name."""
        return self.handler.__name__

    @property
    def description(self) -> str:
        return inspect.cleandoc(self.handler.__doc__ or "")

    @property
    def scope(self) -> str:
        """The token scope this operation needs."""
        if self.access == "admin":
            return "admin"
        return "read" if self.method == "GET" else "write"

    @property
    def path_params(self) -> list[tuple[str, str]]:
        """(name, convertor) of each path parameter, convertor "str" when none is given."""
        return [(name, conv or "str") for name, conv in _PARAM.findall(self.path)]


class Operations:
    """The operations of one resource module: `api = Operations(tag="queues")`."""

    def __init__(self, tag: str, description: str = "") -> None:
        self.tag, self.description = tag, description
        self.operations: list[Operation] = []

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._declare("GET", path, options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._declare("POST", path, options)

    def put(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._declare("PUT", path, options)

    def patch(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._declare("PATCH", path, options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._declare("DELETE", path, options)

    def _declare(
        self, method: str, path: str, options: dict[str, Any]
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            op = Operation(method, path, handler, self.tag, **options)
            _check(op)
            if op.response is not None and op.response is not Binary:
                op = dataclasses.replace(op, adapter=TypeAdapter(op.response))
            self.operations.append(op)
            return handler

        return register


def _check(op: Operation) -> None:
    """Refuse a declaration mistake at import time, naming the operation."""
    where = f"{op.method} {op.path} ({op.name})"
    if op.access not in ACCESS:
        raise ValueError(f"{where}: access must be one of {ACCESS}, not {op.access!r}")
    unknown = [p for p in op.problems if p not in PROBLEM_TYPES]
    if unknown:
        raise ValueError(f"{where}: problems not registered in PROBLEM_TYPES: {unknown}")
    if not op.path.startswith("/"):
        raise ValueError(f"{where}: the path must start with '/'")
    if op.body is not None and op.method == "GET":
        raise ValueError(f"{where}: a GET takes no body")
    if (op.status == 204) != (op.response is None):
        raise ValueError(f"{where}: response=None goes with status=204, and only with it")


class Context:
    """What an operation gets besides its parameters (see the module docstring)."""

    def __init__(self, request: Request, user: ApiUser, files: list[Upload]) -> None:
        self.request, self.user, self.files = request, user, files
        self._conn: AsyncConnection | None = None  # the framework's, for idempotent ops
        self._wake = False

    @property
    def config(self) -> Config:
        config: Config = self.request.app.state.config
        return config

    @property
    def db(self) -> Database:
        db: Database = self.request.app.state.db
        return db

    @property
    def tickets(self) -> TicketService:
        tickets: TicketService = self.request.app.state.tickets
        return tickets

    @property
    def actor(self) -> Actor:
        """The agent as the ticket service records who made a change."""
        return Actor(self.user.id, self.user.login, self.user.email, self.user.name)

    def clock(self) -> float:
        """Seconds since the epoch, from the app's clock (tests move it)."""
        return float(self.request.app.state.clock())

    def wake_sender(self) -> None:
        """Say outbox rows were written: the sender is woken when the operation is over (its
        transactions committed, the framework's one included)."""
        self._wake = True

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """The operation's transaction: its own BEGIN … COMMIT, or for an idempotent request
        the framework's, committed with the stored answer after the operation returns."""
        if self._conn is not None:
            yield self._conn
            return
        async with self.db.transaction() as conn:
            yield conn

    @contextlib.contextmanager
    def inside(self, conn: AsyncConnection) -> Iterator[None]:
        """Make `conn` (the framework's open transaction) the one `transaction()` yields."""
        self._conn = conn
        try:
            yield
        finally:
            self._conn = None

    def after_commit(self) -> None:
        wake = self.request.app.state.wake_sender
        if self._wake and wake is not None:
            wake()


def endpoint(op: Operation) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint running `op`."""

    async def run_operation(request: Request) -> Response:
        try:
            return await _run(op, request)
        except Problem as problem:
            return problem_response(problem, request.url.path)
        except TicketError as error:
            return problem_response(from_ticket_error(error), request.url.path)

    run_operation.__name__ = op.name
    return run_operation


async def _run(op: Operation, request: Request) -> Response:
    user = await authenticate(request)
    check_access(op, user)
    kwargs: dict[str, Any] = bodies.path_values(op.path_params, request.path_params)
    if op.query is not None:
        kwargs["query"] = bodies.query_value(op.query, request)
    files: list[Upload] = []
    if op.body is not None:
        kwargs["body"], files, fingerprint = await bodies.body_value(op, request)
    else:
        fingerprint = bodies.fingerprint(request, None, [])
    ctx = Context(request, user, files)

    async def call() -> Response:
        return render(op, await op.handler(ctx, **kwargs))

    try:
        if op.idempotent and request.headers.get("idempotency-key") is not None:
            return await idempotency.run(ctx, call, fingerprint)
        return await call()
    finally:
        # Also after an error: an operation may have committed before it failed, and a
        # sender woken for nothing only looks once.
        ctx.after_commit()


def check_access(op: Operation, user: ApiUser) -> None:
    """Raises Problem 403 when the agent or the token's scope may not run `op`."""
    if op.access == "admin" and not user.is_admin:
        raise Problem(403, "forbidden", "This operation is for administrators only.")
    if not scope_allows(user.scope, op.scope):
        raise Problem(
            403, "insufficient-scope",
            f"This operation needs a token of scope '{op.scope}' and this token has scope "
            f"'{user.scope}'; create one with 'pytrs tokens create --scope {op.scope}'.",
        )  # fmt: skip
