"""Error pages: 403, 404, 405 … rendered through base.html, with one line saying why.

Place in the flow: Starlette's exception middleware calls `http_error` for every
`HTTPException` (a route not found, a method not allowed, `raise HTTPException(403)` in a
page). Unexpected exceptions become the 500 page in `guards.ErrorPage`. Under /api/ the answer
is a problem+json instead (`api/problems.py`), never a page.
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from pytrs.web.api.problems import from_http_status, is_api, problem_response
from pytrs.web.pages import render

TITLES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large",
}
MESSAGES = {
    403: "You may not see or do this.",
    404: "There is no such page, or you may not see it.",
    405: "This page cannot be used that way.",
}


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if is_api(request.url.path):
        return problem_response(from_http_status(status, exc.headers), request.url.path)
    # Starlette fills `detail` with the status phrase when a raiser gave none.
    default = MESSAGES.get(status, "The request could not be completed.")
    message = exc.detail if exc.detail and exc.detail != _phrase(status) else default
    context = {"title": TITLES.get(status, "Error"), "message": message}
    return render(request, "error.html", context, status_code=status, headers=exc.headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
