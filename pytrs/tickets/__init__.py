"""The ticket service: what a ticket change means, for every writer (issue 11).

`TicketService` is the facade (find, agent, create, add_article, reply, note, update, merge,
link); `changes` holds the pure semantics, `history` spells Znuny's history entries, `rows`
builds the rows and `writes` writes them in batches. The postmaster's batch path uses the
same pieces, so a change reads the same whoever made it.
"""

from pytrs.tickets.errors import (
    InvalidChange,
    TicketError,
    TicketMerged,
    TicketNotFound,
    UnknownName,
)
from pytrs.tickets.model import (
    Actor,
    ArticleAttachment,
    ArticleInput,
    Changed,
    Changes,
    NewTicket,
    Reply,
    TicketRecord,
    TicketUpdate,
)
from pytrs.tickets.service import TicketService

__all__ = [
    "Actor",
    "ArticleAttachment",
    "ArticleInput",
    "Changed",
    "Changes",
    "InvalidChange",
    "NewTicket",
    "Reply",
    "TicketError",
    "TicketMerged",
    "TicketNotFound",
    "TicketRecord",
    "TicketService",
    "TicketUpdate",
    "UnknownName",
]
