"""Downloads of a ticket's stored mail through the API: an article's attachment, and the raw
message an article came from or went out as.

Place in the flow: read-only, the JSON API's twin of `web/agents/attachments.py`, whose
download shape it reuses: `Content-Disposition: attachment` with the name made harmless (an
ASCII fallback beside RFC 6266 `filename*=UTF-8''…`), the stored type unless a browser would
render it as a document (then application/octet-stream), `X-Content-Type-Options: nosniff`
and a sandboxing Content-Security-Policy. The ticket is checked first (404 for one the caller
may not read); an article of another ticket, or a number it does not have, is the same 404.
"""

from __future__ import annotations

from starlette.responses import Response

from pytrs.tickets import article_reads, queries
from pytrs.web.agents.attachments import download, safe_content_type, safe_filename
from pytrs.web.api.operations import Binary, Context, Operations
from pytrs.web.api.problems import Problem
from pytrs.web.api.ticket_access import readable_ticket

api = Operations(tag="attachments")
_ARTICLE = "/tickets/{tn}/articles/{article_id:int}"
FILE_NOT_FOUND = "This article has no such file, or you may not see it."


@api.get(
    _ARTICLE + "/attachments/{number:int}",
    access="ticket-read",
    response=Binary,
    summary="Download an attachment",
)
async def download_attachment(ctx: Context, tn: str, article_id: int, number: int) -> Response:
    """Attachment `number` (from 1, as the article lists them) as a download, with its stored
    name and, unless a browser would run it as a document, its stored type."""
    async with ctx.transaction() as conn:
        ticket = await readable_ticket(ctx, conn, tn)
        found = await article_reads.attachment(conn, article_id, number)
    if found is None or found.ticket_id != ticket.id:
        raise Problem(404, "not-found", FILE_NOT_FOUND)
    name = safe_filename(found.filename, fallback=f"attachment-{number}")
    return download(found.content, name, safe_content_type(found.content_type))


@api.get(
    _ARTICLE + "/raw",
    access="ticket-read",
    response=Binary,
    summary="Download an article's raw mail",
)
async def download_raw(ctx: Context, tn: str, article_id: int) -> Response:
    """The mail as received or sent (message/rfc822), for articles that keep one (`has_raw`):
    mail that came in, and answers sent. Notes and API-made articles have none (404)."""
    async with ctx.transaction() as conn:
        ticket = await readable_ticket(ctx, conn, tn)
        found = await queries.article_raw(conn, article_id)
    if found is None or found.ticket_id != ticket.id or found.raw is None:
        raise Problem(404, "not-found", FILE_NOT_FOUND)
    return download(found.raw, f"ticket-{ticket.tn}-article-{article_id}.eml", "message/rfc822")
