"""The API's human documentation: `/api/v1/docs` (the OpenAPI document rendered) and
`/api/v1/problems` (every problem type; each problem's `type` links to its entry).

Place in the flow: served by `registry.py` without a token, rendered server-side from the
same OpenAPI document clients read, through our own templates (`templates/api/`): no
JavaScript, no CDN, so the page keeps the web view's Content-Security-Policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from pytrs.web.api.problems import PROBLEM_TYPES
from pytrs.web.pages import render


def docs_page(document: Callable[[], dict[str, Any]]) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint rendering the OpenAPI document `document()` returns."""

    async def api_docs(request: Request) -> Response:
        return render(request, "api/docs.html", {"title": "API", "doc": document()})

    return api_docs


async def problems_page(request: Request) -> Response:
    problems = sorted(PROBLEM_TYPES.items(), key=lambda item: (item[1].status, item[0]))
    return render(
        request, "api/problems.html", {"title": "API problem types", "problems": problems}
    )
