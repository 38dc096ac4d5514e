"""The security middleware: response headers, CSRF checks and the 500 page.

Place in the flow, outermost first: `SecurityHeaders` (every response, error pages included),
then `ErrorPage` (any unexpected exception, a database outage in the session check included:
its traceback to the log, a plain 500 page to the browser), then the session middleware
(`signin.py`), then `CsrfCheck` (refuses a state-changing request without the session's
token), then the routes.
"""

from __future__ import annotations

import hmac
import logging

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pytrs.web.api.problems import internal_error, is_api, problem_response
from pytrs.web.pages import render, session_of

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# A form bigger than this is refused (413) before the CSRF check has read more of it: the
# largest a page takes is a reply, 20 MB of attachments and 2 MB of text.
MAX_FORM_BYTES = 32 * 1024 * 1024


class SecurityHeaders:
    """Adds the security headers to every response; a header a page set itself wins.
    Dynamic pages (everything but /static/) are never stored by browsers or proxies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        dynamic = not scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if dynamic:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CsrfCheck:
    """Refuses (403) a POST/PUT/PATCH/DELETE whose `csrf_token` form field or X-CSRF-Token
    header is not the session's token; a body over MAX_FORM_BYTES is refused (413) unread.
    /api/ is exempt: it authenticates by bearer token and never by cookie, so a cross-site
    request carries no credentials there."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in UNSAFE_METHODS
            or scope["path"].startswith("/api/")
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        body = await _read_body(request)
        if body is None:
            await _refuse(request, send, 413, _too_large())
            return
        expected = session_of(request).csrf
        given = request.headers.get(CSRF_HEADER, "")
        if not given:
            try:
                given = await _form_token(Request(scope, _replay(body, receive)))
            except HTTPException as exc:  # a malformed form, too many parts: Starlette's line
                problem = {"title": "Bad request", "message": str(exc.detail)}
                await _refuse(request, send, exc.status_code, problem)
                return
        if not expected or not hmac.compare_digest(given, expected):
            await _refuse(request, send, 403, EXPIRED)
            return
        await self.app(scope, _replay(body, receive), send)


EXPIRED = {
    "title": "Form expired",
    "message": "This form has expired or did not come from pytrs; reload the page and retry.",
}


def _too_large() -> dict[str, str]:
    limit = MAX_FORM_BYTES // (1024 * 1024)
    return {
        "title": "Too large",
        "message": f"The form is larger than {limit} MB and was not accepted; "
        "send less (fewer or smaller attachments).",
    }


async def _refuse(request: Request, send: Send, status: int, context: dict[str, str]) -> None:
    response = render(request, "error.html", context, status_code=status)
    await response(request.scope, request.receive, send)


async def _form_token(request: Request) -> str:
    """The form's `csrf_token` field. Fields as large as the whole form pass: the page's own
    parse applies its limits (and says which one a form broke)."""
    form = await request.form(max_part_size=MAX_FORM_BYTES)
    try:
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    finally:
        await form.close()


async def _read_body(request: Request) -> bytes | None:
    """The request body, or None as soon as it is known to exceed MAX_FORM_BYTES (from its
    Content-Length, or while reading a body sent without one): never more is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the page the body already read, then waits on the client."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class ErrorPage:
    """Turns an unexpected exception into the 500 page (a problem+json under /api/); the
    traceback goes to the log only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("web: %s %s failed", scope["method"], scope["path"])
            if started:  # too late for a page; the client sees the connection end
                raise
            if is_api(scope["path"]):
                await problem_response(internal_error(), scope["path"])(scope, receive, send)
                return
            context = {
                "title": "Something went wrong",
                "message": "The server could not complete this request; it has been logged.",
            }
            response = render(Request(scope), "error.html", context, status_code=500)
            await response(scope, receive, send)
