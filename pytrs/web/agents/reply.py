"""The reply to a ticket's customer: the form `/tickets/{tn}/reply` and its POST.

Place in the flow: the form is prefilled as Znuny's compose screen: To is the ticket's
customer (what the service will send to), Cc editable, the subject tagged with the ticket
number, the text quoting the customer's last mail below an answer template of the queue when
the agent picked one (`?template=<id>`, rendered in the sandbox with the ticket's data). The
POST (multipart, with attachments) goes through the service's `reply` in one transaction: an
agent article, the outbox row from the queue's system address with its signature, history,
and the optional next state; then the outbox sender is woken so the mail leaves now.
"""

from __future__ import annotations

import mimetypes
from email.utils import getaddresses
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.responders.answer_mail import NoAnswerPossible, customer_address, quoted, system_sender
from pytrs.responders.answer_templates import AnswerTemplateError, render_answer
from pytrs.responders.message import Draft
from pytrs.responders.templates import ArticleVars, SystemVars, TicketVars, template_variables
from pytrs.schema import standard_template_repo, ticket_repo
from pytrs.tickets import Actor, ArticleAttachment, InvalidChange, TicketRecord, queries
from pytrs.web.access import WebUser, agent_page
from pytrs.web.agents.actions import field, run_action
from pytrs.web.agents.attachments import MIME_TYPE, OCTET_STREAM, safe_filename
from pytrs.web.agents.ticket_access import service, ticket_url, writable_ticket
from pytrs.web.pages import render

FILES_MAX_BYTES = 20 * 1024 * 1024  # all attachments of one answer together
TEXT_MAX_BYTES = 2 * 1024 * 1024


async def reply_form(request: Request, user: WebUser) -> Response:
    tn = request.path_params["tn"]
    async with request.app.state.db.connect() as conn:
        ticket = await writable_ticket(request, conn, user, tn)
        detail = await queries.ticket_detail(conn, ticket.tn)
        last = _last_customer_article(detail.articles if detail else ())
        templates = await standard_template_repo.for_queue(conn, ticket.queue_id)
        summary = (await ticket_repo.ticket_summaries(conn, [ticket.id]))[ticket.id]
        names = await service(request).names(conn)
    try:
        to, problem = customer_address(summary), ""
    except NoAnswerPossible as exc:
        to, problem = "", str(exc)
    chosen = request.query_params.get("template", "")
    text, template_error = _template_text(request, ticket, last, templates, chosen)
    quote = quoted(last.body) if last else ""
    context: dict[str, Any] = {
        "ticket": ticket, "to": to, "problem": problem, "templates": templates,
        "chosen": chosen, "template_error": template_error,
        "subject": _subject(request, ticket, last), "body": f"{text}\n\n{quote}".lstrip("\n"),
        "states": sorted(n for n, (_i, kind) in names.states.items() if kind != "merged"),
    }  # fmt: skip
    return render(request, "agents/reply.html", context)


def _last_customer_article(
    articles: tuple[queries.ArticleView, ...],
) -> queries.ArticleView | None:
    found = [a for a in articles if a.sender_type == "customer" and a.visible]
    return found[-1] if found else None


def _subject(request: Request, ticket: TicketRecord, last: queries.ArticleView | None) -> str:
    """The subject the answer will have: the customer's, tagged and prefixed as configured."""
    plain = (last.subject if last else "") or ticket.title
    draft = Draft(sender="", to=(), subject=plain, text="", tn=ticket.tn, subject_kind="reply")
    return service(request).composer.subject(draft)


def _template_text(
    request: Request,
    ticket: TicketRecord,
    last: queries.ArticleView | None,
    templates: list[standard_template_repo.StandardTemplate],
    chosen: str,
) -> tuple[str, str]:
    """(the chosen template rendered for this ticket, "" or why it failed)."""
    picked = next((t for t in templates if str(t.id) == chosen), None)
    if picked is None:
        return "", ""
    config = request.app.state.config
    sender = system_sender(config, ticket.queue) or ("", "")
    variables = template_variables(
        TicketVars(
            tn=ticket.tn, title=ticket.title, queue=ticket.queue, state=ticket.state,
            priority=ticket.priority, hook=config.ticket.hook,
            customer_user=ticket.customer_user, customer_id=ticket.customer_id,
            url=ticket_url(ticket.tn),
        ),
        ArticleVars(
            subject=last.subject, from_=last.from_, to=last.to, cc=last.cc, body=last.body,
            message_id=last.message_id, created=last.created,
        ) if last else ArticleVars(),
        SystemVars(sender[0], sender[1]),
    )  # fmt: skip
    try:
        return render_answer(picked.name, picked.text, variables).rstrip("\n"), ""
    except AnswerTemplateError as exc:
        return "", f"The template {picked.name!r} could not be used: {exc}"


async def send_reply(request: Request, user: WebUser) -> Response:
    form = await request.form(max_files=20, max_fields=50, max_part_size=TEXT_MAX_BYTES)
    try:
        files = await _attachments(form)
        response = await run_action(request, user, _reply(files), form)
    finally:
        await form.close()
    wake = request.app.state.wake_sender
    if wake is not None and response.status_code == 303:
        wake()
    return response


def _reply(files: list[ArticleAttachment]) -> Any:
    async def reply(
        request: Request,
        user: WebUser,
        conn: AsyncConnection,
        ticket: TicketRecord,
        actor: Actor,
        form: FormData,
    ) -> tuple[str, str]:
        if sum(len(f.content) for f in files) > FILES_MAX_BYTES:
            raise InvalidChange(f"the attachments exceed {FILES_MAX_BYTES // 2**20} MB together")
        cc = _addresses(field(form, "cc"))
        sent = await service(request).reply(
            conn, ticket.id, actor=actor, body=field(form, "body"), cc=cc,
            state=field(form, "state").strip() or None,
            subject=field(form, "subject").strip() or None, attachments=files, quote=False,
        )  # fmt: skip
        return f"Answer queued to {', '.join(sent.recipients)}.", ticket_url(ticket.tn)

    return reply


def _addresses(value: str) -> list[str]:
    """The Cc field's addresses as "Name <addr>" values (the composer checks each)."""
    found = []
    for name, address in getaddresses([value.replace("\n", " ").replace("\r", " ")]):
        if address:
            found.append(f"{name} <{address}>" if name else address)
    return found


async def _attachments(form: FormData) -> list[ArticleAttachment]:
    found = []
    for value in form.getlist("attachments"):
        if not isinstance(value, UploadFile) or not value.filename:
            continue
        content = await value.read()
        name = safe_filename(value.filename)
        kind = (value.content_type or "").split(";")[0].strip().lower()
        if not MIME_TYPE.fullmatch(kind) or kind == OCTET_STREAM:
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        found.append(ArticleAttachment(name, kind, content))
    return found


routes: list[BaseRoute] = [
    Route("/tickets/{tn}/reply", agent_page(reply_form), methods=["GET"], name="ticket_reply"),
    Route("/tickets/{tn}/reply", agent_page(send_reply), methods=["POST"]),
]
