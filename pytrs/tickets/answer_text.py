"""An answer template of a ticket's queue rendered for that ticket: the text an agent's reply
starts from.

Place in the flow: the JSON API's reply (`web/api/resources/articles.py`) calls `answer_text`
before the ticket service's `reply`, inside the same transaction; the template runs in the
responders' sandbox with the ticket's fields, the customer's last mail and the queue's
sender address, exactly as the web view's reply form renders it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.config import Config
from pytrs.responders.answer_mail import system_sender
from pytrs.responders.answer_templates import AnswerTemplateError, render_answer
from pytrs.responders.templates import ArticleVars, SystemVars, TicketVars, template_variables
from pytrs.schema import standard_template_repo, ticket_repo
from pytrs.tickets.errors import InvalidChange, UnknownName
from pytrs.tickets.model import TicketRecord


async def answer_text(
    conn: AsyncConnection, config: Config, ticket: TicketRecord, template_id: int
) -> str:
    """Template `template_id` rendered for `ticket`. Raises UnknownName when the queue has no
    valid answer template with that id, InvalidChange when the template fails to render."""
    templates = await standard_template_repo.for_queue(conn, ticket.queue_id)
    picked = next((t for t in templates if t.id == template_id), None)
    if picked is None:
        raise UnknownName(
            f"answer template of queue {ticket.queue}",
            str(template_id),
            [str(t.id) for t in templates],
        )
    last = await ticket_repo.last_customer_article(conn, ticket.id)
    variables = _variables(config, ticket, last)
    try:
        return render_answer(picked.name, picked.text, variables).rstrip("\n")
    except AnswerTemplateError as exc:
        raise InvalidChange(
            f"the answer template {picked.name!r} could not be used: {exc}"
        ) from exc


def _variables(
    config: Config, ticket: TicketRecord, last: ticket_repo.CustomerArticle | None
) -> dict[str, Any]:
    """The template's variables: the ticket, the customer's last mail, the queue's sender."""
    sender = system_sender(config, ticket.queue) or ("", "")
    return template_variables(
        TicketVars(
            tn=ticket.tn,
            title=ticket.title,
            queue=ticket.queue,
            state=ticket.state,
            priority=ticket.priority,
            hook=config.ticket.hook,
            customer_user=ticket.customer_user,
            customer_id=ticket.customer_id,
            url=f"/tickets/{ticket.tn}",
        ),
        ArticleVars(
            subject=last.subject,
            from_=last.from_,
            to=last.to,
            cc=last.cc,
            body=last.body,
            message_id=last.message_id,
            created=last.created,
        )
        if last
        else ArticleVars(),
        SystemVars(sender[0], sender[1]),
    )
