"""Rendering pages: templates with the context every page needs, redirects and flashes.

Place in the flow: the last step of every page endpoint. `render` hands a template the
signed-in `user`, the session's `csrf_token` (for every form), the `flashes` left by the
previous request (shown once) and the `request`. Jinja2 autoescapes everything (`.html`
templates); nothing is marked safe here. A page that needs a different Content-Security-Policy
passes its own (`csp=`); the security middleware leaves a policy a page set alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from pytrs.web.access import current_user
from pytrs.web.sessions import SESSION_KEY, Session

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
PRODUCT = "pytrs"

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=jinja2.select_autoescape(("html", "htm", "xml"), default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.globals["product"] = PRODUCT
templates = Jinja2Templates(env=_environment)


def session_of(request: Request) -> Session:
    """The request's session (a throwaway one outside the session middleware)."""
    session = request.scope.get(SESSION_KEY)
    if not isinstance(session, Session):
        session = Session()
        request.scope[SESSION_KEY] = session
    return session


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    *,
    csp: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The template `name` (under pytrs/web/templates/) as an HTML response."""
    session = session_of(request)
    full = {
        "user": current_user(request),
        "csrf_token": session.csrf_token(),
        "flashes": session.take_flashes(),
        **(context or {}),
    }
    extra = dict(headers or {})
    if csp is not None:
        extra["Content-Security-Policy"] = csp
    return templates.TemplateResponse(request, name, full, status_code=status_code, headers=extra)


def redirect(url: str) -> Response:
    """303 See Other: the answer to a POST (POST → redirect → GET)."""
    return RedirectResponse(url, status_code=303)


def flash(request: Request, text: str, kind: str = "info") -> None:
    """A one-line message shown once on the next page rendered for this session."""
    if kind not in ("info", "error"):
        raise ValueError(f"flash kind must be 'info' or 'error', not {kind!r}")
    session_of(request).add_flash(text, kind)
