"""Downloads of a ticket's stored mail: an article's attachments and its raw message.

Place in the flow: read-only, linked from the ticket zoom. The same check as the zoom (404 for
a ticket the agent may not read, or an article of another ticket), then the bytes as a
download: `Content-Disposition: attachment` with the name made harmless (RFC 6266
`filename*=UTF-8''…` beside an ASCII fallback), the stored type unless a browser would render
it as a document (HTML, SVG, XML: those go as application/octet-stream), and nosniff.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.tickets import article_reads, queries
from pytrs.web.access import WebUser, agent_page
from pytrs.web.agents.ticket_access import NOT_FOUND, readable_ticket

OCTET_STREAM = "application/octet-stream"
MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
# Types a browser shows as a document with scripts of its own, even from a download URL.
_DOCUMENT_WORDS = ("html", "svg", "xml", "javascript", "ecmascript", "xsl", "pdf+")
_CHARSET = re.compile(r'charset="?([A-Za-z0-9_.:-]{1,40})"?(?:;|\s*$)', re.IGNORECASE)
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f"\\/;:*?<>|]+')
NAME_MAX = 150


def safe_content_type(stored: str) -> str:
    """The stored type when it is a plain type (only a simple charset kept of its
    parameters), else octet-stream."""
    kind, _, parameters = stored.partition(";")
    kind = kind.strip().lower()
    if not MIME_TYPE.fullmatch(kind) or any(word in kind for word in _DOCUMENT_WORDS):
        return OCTET_STREAM
    charset = _CHARSET.search(parameters)
    return f"{kind}; charset={charset.group(1)}" if charset and kind.startswith("text/") else kind


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """The last path segment of `name`, without control characters, quotes or separators."""
    last = re.split(r"[/\\]", name)[-1]
    cleaned = _UNSAFE_NAME.sub("_", last).strip(" ._")
    return cleaned[:NAME_MAX] or fallback


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII fallback name and the UTF-8 one (RFC 6266, RFC 8187)."""
    ascii_name = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def download(content: bytes, name: str, content_type: str) -> Response:
    return Response(
        content,
        media_type=content_type,
        headers={
            "Content-Disposition": content_disposition(name),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


_ID_MAX = 2**62  # bigger numbers name no row, and would not fit the id columns


def _ids(request: Request) -> tuple[str, int]:
    tn = request.path_params["tn"]
    article_id = request.path_params["article_id"]
    if article_id >= _ID_MAX or request.path_params.get("number", 0) >= _ID_MAX:
        raise HTTPException(404, NOT_FOUND)
    return tn, article_id


async def attachment(request: Request, user: WebUser) -> Response:
    tn, article_id = _ids(request)
    number = request.path_params["number"]
    async with request.app.state.db.connect() as conn:
        ticket = await readable_ticket(request, conn, user, tn)
        found = await article_reads.attachment(conn, article_id, number)
    if found is None or found.ticket_id != ticket.id:
        raise HTTPException(404, NOT_FOUND)
    name = safe_filename(found.filename, fallback=f"attachment-{number}")
    return download(found.content, name, safe_content_type(found.content_type))


async def raw_mail(request: Request, user: WebUser) -> Response:
    tn, article_id = _ids(request)
    async with request.app.state.db.connect() as conn:
        ticket = await readable_ticket(request, conn, user, tn)
        found = await queries.article_raw(conn, article_id)
    if found is None or found.ticket_id != ticket.id or found.raw is None:
        raise HTTPException(404, NOT_FOUND)
    return download(found.raw, f"ticket-{ticket.tn}-article-{article_id}.eml", "message/rfc822")


_ARTICLE = "/tickets/{tn}/articles/{article_id:int}"
routes: list[BaseRoute] = [
    Route(_ARTICLE + "/attachments/{number:int}", agent_page(attachment), methods=["GET"],
          name="article_attachment"),
    Route(_ARTICLE + "/raw", agent_page(raw_mail), methods=["GET"], name="article_raw"),
]  # fmt: skip
