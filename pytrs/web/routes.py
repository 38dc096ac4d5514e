"""The routes the web app mounts: each page module's `routes`, in one list.

Place in the flow: `app.create_app` mounts `ROUTES`. A page module exposes
`routes: list[BaseRoute]`; add ONE import line and ONE entry below for it. Order matters only
where paths overlap (the first match wins).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from pytrs.web import login
from pytrs.web.admin import filter_bench, filters, responses, templates_admin
from pytrs.web.admin import index as admin_pages
from pytrs.web.agents import actions, attachments, queue_view, reply, search, zoom
from pytrs.web.api import registry as api
from pytrs.web.pages import STATIC_DIR

ROUTES: list[BaseRoute] = [
    *login.routes,
    *queue_view.routes,
    *search.routes,
    *admin_pages.routes,
    *zoom.routes,
    *reply.routes,
    *actions.routes,
    *attachments.routes,
    *templates_admin.routes,
    *filters.routes,
    *filter_bench.routes,
    *responses.routes,
    Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    api.mount(),  # the JSON API at /api/v1 (web/api/registry.py lists its resources)
]
