"""Which mail from an agent's address is really the agent's: asked before routing.

Place in the flow: after parsing and before the processing transaction, the worker hands the
batch here. Mail whose From is a valid agent's address is checked by
`authentication.authenticity` (a reply token, a trusted Authentication-Results header, or DKIM
aligned with the From domain); DNS is asked here, never while the transaction holds locks.
An authenticated mail is routed as the agent's (`RoutingInput.agent`); any other mail from an
agent's address is customer mail, flagged (`RoutingInput.unverified_agent`) — SPEC S8.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from pytrs.authentication.authenticity import AgentAuthenticator
from pytrs.postmaster.planning import Parsed
from pytrs.routing.ticket_number import TicketNumberGenerator
from pytrs.schema import ticket_repo
from pytrs.schema.database import Database

# How much of a failed check's reasons the routing trace and history keep.
_DETAIL_CHARS = 300


async def identify_agents(
    db: Database,
    authenticator: AgentAuthenticator,
    numbers: TicketNumberGenerator,
    parsed: list[Parsed],
) -> None:
    """Mark each mail of `parsed` from an agent's address as authenticated or not."""
    senders = {p.mail.from_address for p in parsed if p.mail.from_address}
    async with db.connect() as conn:
        agents = await ticket_repo.agents_by_email(conn, senders)
    candidates = [p for p in parsed if p.mail.from_address in agents]
    if not candidates:
        return
    verdicts = await asyncio.gather(
        *(
            authenticator.verify(
                p.claimed.raw, p.mail, agent_address=p.mail.from_address,
                agent_login=agents[p.mail.from_address],
                # A reply token is bound to the ticket whose number the answer carries.
                ticket_tn=numbers.find(p.mail.subject) or "",
                trusted_source=p.claimed.trusted,
                recipients=[p.claimed.recipient, *p.mail.addresses("To", "Cc")],
            )
            for p in candidates
        )
    )  # fmt: skip
    for p, verdict in zip(candidates, verdicts, strict=True):
        p.agent_check = verdict
        if verdict.authenticated:
            p.item = replace(p.item, agent=agents[p.mail.from_address])
        else:
            p.item = replace(p.item, unverified_agent=verdict.detail[:_DETAIL_CHARS])
