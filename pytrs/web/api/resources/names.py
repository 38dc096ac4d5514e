"""API resource `names`: the states, priorities and types an agent may pick for a ticket.

Place in the flow: reads the valid names the ticket service resolves changes with
(`TicketService.names`), so a name listed here is one an update or create accepts. `merged`
is left out of the states: a ticket is merged by the merge operation, never by a state.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from pytrs.web.api.operations import Context, Operations

api = Operations(tag="names", description="Names a ticket's fields may take.")


class StateOut(BaseModel):
    name: str = Field(description="The state's name, as updates take it.")
    type: str = Field(description="Its kind: new, open, closed, pending reminder, pending auto …")


class NameOut(BaseModel):
    name: str


@api.get("/states", access="agent", response=list[StateOut], summary="Ticket states")
async def list_states(ctx: Context) -> list[StateOut]:
    """The valid states a ticket may be set to, by name."""
    async with ctx.transaction() as conn:
        names = await ctx.tickets.names(conn)
    return [
        StateOut(name=name, type=kind)
        for name, (_id, kind) in sorted(names.states.items())
        if kind != "merged"
    ]


@api.get("/priorities", access="agent", response=list[NameOut], summary="Ticket priorities")
async def list_priorities(ctx: Context) -> list[NameOut]:
    """The valid priorities, by name."""
    async with ctx.transaction() as conn:
        names = await ctx.tickets.names(conn)
    return [NameOut(name=n) for n in sorted(names.priorities)]


@api.get("/types", access="agent", response=list[NameOut], summary="Ticket types")
async def list_types(ctx: Context) -> list[NameOut]:
    """The valid ticket types, by name."""
    async with ctx.transaction() as conn:
        names = await ctx.tickets.names(conn)
    return [NameOut(name=n) for n in sorted(names.types)]
