"""A ticket's articles through the API: the list (oldest first, paged), one article with its
sanitised HTML body, and a new one: an answer to the customer or an internal note.

Place in the flow: the JSON twin of the web view's zoom, reply form and note action
(`web/agents/zoom.py`, `reply.py`, `actions.py`). Reads check the ticket with
`web/api/ticket_access.py` (an article id of another ticket is answered as a missing one);
a reply goes through the ticket service's `reply` (an agent article, the mail in the outbox,
`SendAnswer` history, the optional next state) and wakes the outbox sender after the commit;
a note through `note`.
"""

from __future__ import annotations

from typing import cast, get_args

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from pytrs.tickets import ArticleAttachment, TicketRecord, api_reads, article_reads
from pytrs.tickets.answer_text import answer_text
from pytrs.web.api.operations import Context, Operations
from pytrs.web.api.paging import Page, PageQuery, bad_cursor
from pytrs.web.api.problems import Problem
from pytrs.web.api.resources import tickets_files
from pytrs.web.api.resources.article_models import (
    ArticleCreate,
    ArticleCreated,
    ArticleOut,
    ArticleRow,
    AttachmentInfo,
    Sender,
)
from pytrs.web.api.resources.ticket_models import utc
from pytrs.web.api.resources.tickets_created import created
from pytrs.web.api.ticket_access import readable_ticket, writable_ticket

api = Operations(tag="articles")
_ARTICLES = "/tickets/{tn}/articles"
ARTICLE_NOT_FOUND = "This ticket has no such article, or you may not see it."


@api.get(
    _ARTICLES,
    access="ticket-read",
    query=PageQuery,
    response=Page[ArticleRow],
    summary="A ticket's articles, oldest first",
)
async def list_articles(ctx: Context, tn: str, query: PageQuery) -> Page[ArticleRow]:
    """The ticket's articles with their text and attachment lists (no content), oldest first,
    paged by `next_cursor`. Internal notes are included (`visible` false)."""
    after = None
    if query.cursor:
        if not query.cursor.isdigit() or len(query.cursor) > 18:
            raise bad_cursor()
        after = int(query.cursor)
    async with ctx.transaction() as conn:
        ticket = await readable_ticket(ctx, conn, tn)
        texts, more = await api_reads.article_page(conn, ticket.id, after=after, limit=query.limit)
        ids = [t.id for t in texts]
        files = await article_reads.attachment_lists(conn, ids)
        raws = await article_reads.stored_raw(conn, ids)
        html = await article_reads.html_bodies(conn, ids)
    items = [_row(t, files.get(t.id, []), t.id in raws, t.id in html) for t in texts]
    return Page(items=items, next_cursor=str(texts[-1].id) if more else None)


def _row(
    t: api_reads.ArticleText, files: list[article_reads.Listed], has_raw: bool, has_html: bool
) -> ArticleRow:
    return ArticleRow(
        id=t.id,
        sender=cast(Sender, t.sender_type if t.sender_type in get_args(Sender) else ""),
        channel=t.channel,
        visible=t.visible,
        from_=t.from_,
        to=t.to,
        cc=t.cc,
        subject=t.subject,
        created=utc(t.created),
        body=t.body,
        attachments=[
            AttachmentInfo(
                number=f.number,
                filename=f.filename,
                content_type=f.content_type,
                size=f.size,
                content_id=f.content_id,
            )
            for f in files
        ],
        has_raw=has_raw,
        has_html=has_html,
    )


@api.get(
    _ARTICLES + "/{article_id:int}",
    access="ticket-read",
    response=ArticleOut,
    summary="One article, with its sanitised HTML body",
)
async def get_article(ctx: Context, tn: str, article_id: int) -> ArticleOut:
    """The article's fields, text, attachment list and, when the mail had one, its HTML body
    as the parser sanitised it (never the mail's own HTML). An article of another ticket is
    answered as a missing one."""
    async with ctx.transaction() as conn:
        ticket = await readable_ticket(ctx, conn, tn)
        found = await api_reads.one_article(conn, ticket.id, article_id)
        if found is None:
            raise Problem(404, "not-found", ARTICLE_NOT_FOUND)
        files = await article_reads.attachment_lists(conn, [found.id])
        raws = await article_reads.stored_raw(conn, [found.id])
        html = (await article_reads.html_bodies(conn, [found.id])).get(found.id)
        traces = await article_reads.routing_traces(conn, {found.id: found.message_id})
    row = _row(found, files.get(found.id, []), found.id in raws, html is not None)
    return ArticleOut(
        **row.model_dump(),
        message_id=found.message_id,
        in_reply_to=found.in_reply_to,
        content_type=found.content_type,
        trace=traces.get(found.id),
        html=html,
    )


@api.post(
    _ARTICLES,
    access="ticket-write",
    body=ArticleCreate,
    response=ArticleCreated,
    status=201,
    multipart=True,
    max_body=tickets_files.BODY_MAX,
    summary="Answer the customer, or add an internal note",
    problems=("unknown-name", "invalid-change", "ticket-merged"),
)
async def create_article(ctx: Context, tn: str, body: ArticleCreate) -> Response:
    """`reply`: a mail to the ticket's customer from the queue's system address, with the
    queue's signature, Cc, files and an optional next state; it is stored as an agent article
    with `SendAnswer` history and queued in the outbox, which sends it at once. `note`: an
    internal note, not visible to the customer and never sent (`cc`, `state`, `template` and
    `quote` are for replies only). Files as base64 in JSON or as `attachments` file parts."""
    if body.kind == "note" and (
        body.cc or body.state or body.template or body.attachments or ctx.files
    ):
        raise Problem(
            422,
            "invalid-change",
            "A note takes only a body and a subject; cc, "
            "state, template and files are for replies.",
        )
    files = tickets_files.attachments(ctx, body.attachments)
    async with ctx.transaction() as conn:
        ticket = await writable_ticket(ctx, conn, tn)
        if body.kind == "note":
            article_id = await ctx.tickets.note(
                conn, ticket.id, actor=ctx.actor, body=body.body, subject=body.subject
            )
            answer = ArticleCreated(article_id=article_id, message_id=None, recipients=[])
        else:
            answer = await _reply(ctx, conn, ticket, body, files)
    return created(answer, f"/api/v1/tickets/{ticket.tn}/articles/{answer.article_id}")


async def _reply(
    ctx: Context,
    conn: AsyncConnection,
    ticket: TicketRecord,
    body: ArticleCreate,
    files: list[ArticleAttachment],
) -> ArticleCreated:
    """The answer through the ticket service, its text after the template's when one is
    picked; the outbox sender is woken once the transaction commits."""
    text = body.body
    if body.template is not None:
        start = await answer_text(conn, ctx.config, ticket, body.template)
        text = f"{start}\n\n{text}".strip("\n")
    sent = await ctx.tickets.reply(
        conn,
        ticket.id,
        actor=ctx.actor,
        body=text,
        cc=body.cc,
        state=body.state,
        subject=body.subject,
        attachments=files,
        quote=body.quote,
    )
    ctx.wake_sender()
    return ArticleCreated(
        article_id=sent.article_id, message_id=sent.message_id, recipients=list(sent.recipients)
    )
