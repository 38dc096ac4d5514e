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
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
# A form bigger than this is refused before the CSRF check reads it into memory.
MAX_FORM_BYTES = 64 * 1024 * 1024


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
    header is not the session's token. /api/ is exempt: it authenticates by bearer token and
    never by cookie, so a cross-site request carries no credentials there."""

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
        expected = session_of(request).csrf
        given = request.headers.get(CSRF_HEADER, "")
        if not given and body is not None:
            form = await request.form()
            value = form.get(CSRF_FIELD)
            given = value if isinstance(value, str) else ""
            await form.close()
        if body is None or not expected or not hmac.compare_digest(given, expected):
            response = render(request, "error.html", _refusal(body is None), status_code=403)
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


def _refusal(too_big: bool) -> dict[str, str]:
    if too_big:
        return {"title": "Too large", "message": "The form is too large to be accepted."}
    return {
        "title": "Form expired",
        "message": "This form has expired or did not come from pytrs; reload the page and retry.",
    }


async def _read_body(request: Request) -> bytes | None:
    """The request body (kept by `request` for its own form parsing), None when too large."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return None
    body = await request.body()
    return body if len(body) <= MAX_FORM_BYTES else None


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
    """Turns an unexpected exception into the 500 page; the traceback goes to the log only."""

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
            context = {
                "title": "Something went wrong",
                "message": "The server could not complete this request; it has been logged.",
            }
            response = render(Request(scope), "error.html", context, status_code=500)
            await response(scope, receive, send)
