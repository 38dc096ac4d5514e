"""Test-only API operations exercising the framework, mounted at /api/test beside the real API.

`mounted(app)` adds them to an app; `things(db)` counts the effects of `create_thing`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, insert, select
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Mount

from pytrs.schema.database import Database, utcnow
from pytrs.schema.tables import SystemData
from pytrs.tickets.errors import InvalidChange, TicketMerged, TicketNotFound, UnknownName
from pytrs.web.api.operations import Binary, Context, Operations
from pytrs.web.api.paging import Page, PageQuery
from pytrs.web.api.problems import Problem
from pytrs.web.api.registry import operation_routes

TEST_URL = "http://testserver/api/test"
THING_PREFIX = "test.thing."
api = Operations(tag="test")
_system_data = SystemData.__table__


class EchoQuery(PageQuery):
    tags: list[str] = Field(default_factory=list)
    flag: bool = False


class Echo(BaseModel):
    limit: int
    cursor: str | None
    tags: list[str]
    flag: bool
    user: str
    scope: str


class Meta(BaseModel):
    colour: str


class ThingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    labels: list[str] = Field(default_factory=list)
    pause: float = Field(0.0, ge=0, le=2)
    meta: Meta | None = None
    count: int | None = None


class ThingOut(BaseModel):
    key: str
    name: str
    labels: list[str]
    files: list[str]
    colour: str | None
    made: datetime
    count: int | None


class Small(BaseModel):
    text: str = ""


@api.get("/echo", access="agent", query=EchoQuery, response=Page[Echo])
async def echo(ctx: Context, query: EchoQuery) -> Page[Echo]:
    """Echoes the query back."""
    item = Echo(**query.model_dump(), user=ctx.user.login, scope=ctx.user.scope)
    return Page[Echo](items=[item], next_cursor=None)


@api.post("/things", access="agent", body=ThingIn, response=ThingOut, status=201,
          idempotent=True, multipart=True)  # fmt: skip
async def create_thing(ctx: Context, body: ThingIn) -> ThingOut:
    """Stores a row in system_data (the effect an idempotency test counts)."""
    async with ctx.transaction() as conn:
        count = await conn.scalar(select(func.count()).select_from(_system_data))
        key = f"{THING_PREFIX}{count}.{body.name}"
        now = utcnow()
        await conn.execute(insert(_system_data).values(
            data_key=key[:160], data_value=body.name, create_time=now, create_by=ctx.user.id,
            change_time=now, change_by=ctx.user.id,
        ))  # fmt: skip
        await asyncio.sleep(body.pause)  # holds the transaction open: requests overlap
    ctx.wake_sender()
    files = [f"{f.filename}:{f.content_type}:{len(f.content)}" for f in ctx.files]
    colour = body.meta.colour if body.meta else None
    return ThingOut(key=key, name=body.name, labels=body.labels, files=files, colour=colour,
                    made=datetime(2026, 12, 7, 10, 0, 0), count=body.count)  # fmt: skip


@api.post("/small", access="agent", body=Small, response=Small, max_body=100)
async def small(ctx: Context, body: Small) -> Small:
    return body


@api.patch("/admin/{n:int}", access="admin", response=None, status=204)
async def admin_thing(ctx: Context, n: int) -> None:
    """An admin operation."""


@api.get("/admin/{n:int}", access="admin", response=Small)
async def read_admin_thing(ctx: Context, n: int) -> Small:
    return Small(text=str(n))


@api.post("/fail/special", access="agent", response=Small)
async def special(ctx: Context) -> Small:
    """A literal path beside /fail/{kind}: routed first whatever the declaration order."""
    return Small(text="special")


@api.get("/fail/{kind}", access="agent", response=Binary)
async def fail(ctx: Context, kind: str) -> Response:
    errors = {
        "crash": RuntimeError("secret internals"),
        "merged": TicketMerged("ticket 1 was merged"),
        "unknown": UnknownName("state", "nope"),
        "invalid": InvalidChange("the title must not be empty"),
        "missing": TicketNotFound("no ticket with number '1'"),
        "problem": Problem(409, "conflict", "That name is taken; pick another.", name="x"),
    }
    if kind in errors:
        raise errors[kind]
    return Response(b"\x89PNG", media_type="image/png")


def mounted(app: Starlette) -> Starlette:
    app.router.routes.insert(0, Mount("/api/test", routes=operation_routes(api.operations)))
    return app


async def things(db: Database) -> list[str]:
    async with db.connect() as conn:
        rows = await conn.scalars(
            select(_system_data.c.data_key).where(_system_data.c.data_key.like(THING_PREFIX + "%"))
        )
        return list(rows)
