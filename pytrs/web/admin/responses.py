"""Admin pages of the auto-responses: the list, create, edit, and a live preview.

Place in the flow: an administrator changes Znuny's `auto_response` rows here instead of
`pytrs responses import`, through the same door: `responders.stored_responses.import_responses`
compiles both templates in the sandbox and checks type, language, queues and sender, and the
repository stores the response only when nothing is wrong (raising the auto-responses' change
generation, so running workers reload). Responses provisioned from `[[auto_responses]]` are
shown but refused on save (they belong to pytrs.toml). The preview renders the response as
typed against a real ticket, with the responder's own variables (`answers.response_variables`)
and render (`ResponseTemplate.render`), and stores nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.config import Config
from pytrs.responders.answers import response_variables
from pytrs.responders.responses import ResponseError, ResponseSpec
from pytrs.responders.stored_responses import import_responses
from pytrs.responders.templates import (
    CONTENT_TYPES,
    VARIABLES,
    ArticleVars,
    Rendered,
    SystemVars,
    TemplateError,
    compile_response,
)
from pytrs.schema import response_repo, ticket_repo
from pytrs.schema.database import Database
from pytrs.tickets.queries import ticket_id
from pytrs.web.access import WebUser, admin_page
from pytrs.web.pages import flash, redirect, render

LIST_URL = "/admin/responses"


@dataclass(frozen=True, slots=True)
class Preview:
    """A rendered response, or the one line saying why there is none."""

    rendered: Rendered | None = None
    error: str = ""
    tn: str = ""


def read_spec(form: FormData, original: str) -> ResponseSpec:
    """The response in a submitted form; an edited response keeps its name."""

    def text(key: str) -> str:
        value = form.get(key, "")
        return value if isinstance(value, str) else ""

    return ResponseSpec(
        name=original or text("name").strip(),
        queues=tuple(q for q in form.getlist("queues") if isinstance(q, str) and q),
        type=text("type"),
        subject=text("subject"),
        body=text("body").replace("\r\n", "\n"),
        language=text("language").strip().lower(),
        content_type=text("content_type"),
        sender=text("sender").strip().lower(),
        valid=form.get("valid") == "on",
        comments=text("comments"),
    )


async def preview(config: Config, db: Database, spec: ResponseSpec, tn: str) -> Preview:
    """`spec` rendered for ticket number `tn` as the responder would render it (answering the
    ticket's newest customer article); reads, never writes."""
    tn = tn.strip()
    try:
        template = compile_response(spec.name or "preview", spec.subject, spec.body,
                                    spec.content_type)  # fmt: skip
    except (TemplateError, ValueError) as exc:
        return Preview(error=str(exc), tn=tn)
    if not tn:
        return Preview(error="Give a ticket number to preview against.")
    async with db.connect() as conn:
        found = await ticket_id(conn, tn)
        if found is None:
            return Preview(error=f"There is no ticket {tn}.", tn=tn)
        ticket = (await ticket_repo.ticket_summaries(conn, {found}))[found]
        answered = await ticket_repo.last_customer_article(conn, found)
        address, name = await response_repo.sender_of(conn, spec)
    article = ArticleVars() if answered is None else ArticleVars(
        answered.subject, answered.from_, answered.to, answered.cc, answered.body,
        answered.message_id, answered.created,
    )  # fmt: skip
    variables = response_variables(ticket, article, SystemVars(address, name), config)
    try:
        return Preview(template.render(variables), tn=tn)
    except TemplateError as exc:
        return Preview(error=str(exc), tn=tn)


@admin_page
async def response_list(request: Request, user: WebUser) -> Response:
    async with request.app.state.db.connect() as conn:
        specs = await response_repo.export_responses(conn)
    return render(request, "admin/responses.html", {"responses": specs})


@admin_page
async def response_new(request: Request, user: WebUser) -> Response:
    if request.method == "POST":
        return await _submitted(request, "")
    blank = ResponseSpec(name="", queues=(), type="auto reply", subject="", body="")
    return await _form_page(request, blank, "")


@admin_page
async def response_edit(request: Request, user: WebUser) -> Response:
    name = request.query_params.get("name", "")
    if request.method == "POST":
        return await _submitted(request, name)
    async with request.app.state.db.connect() as conn:
        specs = await response_repo.export_responses(conn)
    spec = next((s for s in specs if s.name == name), None)
    if spec is None:
        raise HTTPException(404, f"There is no auto-response named {name!r}.")
    return await _form_page(request, spec, name)


async def _submitted(request: Request, original: str) -> Response:
    """Save the submitted response, or (the "preview" button) render it, storing nothing."""
    form = await request.form(max_files=0)
    spec = read_spec(form, original)
    db = request.app.state.db
    if form.get("action") == "preview":
        tn = form.get("ticket", "")
        shown = await preview(request.app.state.config, db, spec, tn if isinstance(tn, str) else "")
        return await _form_page(request, spec, original, shown=shown)
    try:
        # A ResponseError raised inside rolls the transaction back: nothing is stored.
        async with db.transaction() as conn:
            await import_responses(conn, [spec])
    except ResponseError as exc:
        problems = [str(p) for p in exc.problems]
        return await _form_page(request, spec, original, problems=problems, status_code=400)
    flash(request, f"Auto-response {spec.name} saved.")
    return redirect(LIST_URL)


async def _form_page(
    request: Request,
    spec: ResponseSpec,
    original: str,
    *,
    problems: Sequence[str] = (),
    shown: Preview | None = None,
    status_code: int = 200,
) -> Response:
    async with request.app.state.db.connect() as conn:
        choices = await response_repo.response_choices(conn)
    context = {
        "spec": spec,
        "original": original,
        "choices": choices,
        "content_types": CONTENT_TYPES,
        "variables": VARIABLES,
        "problems": problems,
        "preview": shown,
        "provisioned": spec.comments == response_repo.MARK,
    }
    return render(request, "admin/responses_form.html", context, status_code=status_code)


routes: list[BaseRoute] = [
    Route(LIST_URL, response_list, name="admin_responses"),
    Route(LIST_URL + "/new", response_new, methods=["GET", "POST"], name="admin_response_new"),
    Route(LIST_URL + "/edit", response_edit, methods=["GET", "POST"], name="admin_response_edit"),
]
