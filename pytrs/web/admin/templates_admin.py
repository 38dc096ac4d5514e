"""Answer templates for administrators `/admin/templates`: list, create, edit, assign to
queues, delete.

Place in the flow: the text is checked in the responders' sandbox (`responders.
answer_templates`) before `schema.standard_template_repo` stores it, so a broken template is
refused here with one line and never first when an agent starts a reply from it. The form
comes back with what was entered and the reason; a saved change redirects to the list.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.responders.answer_templates import (
    CONTENT_TYPES,
    AnswerTemplateError,
    check_answer_template,
)
from pytrs.schema import standard_template_repo as repo
from pytrs.schema.tables import queue
from pytrs.web.access import WebUser, admin_page
from pytrs.web.pages import flash, redirect, render

LIST_URL = "/admin/templates"
NAME_MAX = 200


async def list_page(request: Request, user: WebUser) -> Response:
    async with request.app.state.db.connect() as conn:
        templates = await repo.list_templates(conn)
        queues = await _queues(conn)
    return render(
        request, "admin/answer_templates.html", {"templates": templates, "queues": queues}
    )


async def _queues(conn: Any) -> dict[int, str]:
    rows = await conn.execute(select(queue.c.id, queue.c.name).order_by(queue.c.name))
    return {int(r.id): r.name for r in rows}


async def edit_page(request: Request, user: WebUser) -> Response:
    template_id = _template_id(request)
    async with request.app.state.db.connect() as conn:
        queues = await _queues(conn)
        if template_id is None:
            values = repo.TemplateValues(name="", text="")
        else:
            found = await repo.get_template(conn, template_id)
            if found is None:
                raise HTTPException(404, "There is no such template.")
            values = repo.TemplateValues(
                id=found.id, name=found.name, text=found.text, content_type=found.content_type,
                comments=found.comments, valid=found.valid, queue_ids=found.queue_ids,
            )  # fmt: skip
    return _form(request, values, queues, "")


def _form(
    request: Request, values: repo.TemplateValues, queues: dict[int, str], error: str,
    status_code: int = 200,
) -> Response:  # fmt: skip
    context = {"values": values, "queues": queues, "error": error,
               "content_types": CONTENT_TYPES}  # fmt: skip
    return render(request, "admin/answer_template_form.html", context, status_code=status_code)


def _template_id(request: Request) -> int | None:
    value = request.path_params.get("template_id")
    if value is None:
        return None
    if value >= 2**31:
        raise HTTPException(404, "There is no such template.")
    return int(value)


async def save_page(request: Request, user: WebUser) -> Response:
    form = await request.form()
    values = _values(form, _template_id(request))
    try:
        check_answer_template(values.name, values.text, values.content_type)
        if len(values.name) > NAME_MAX:
            raise AnswerTemplateError(f"a name is at most {NAME_MAX} characters")
        async with request.app.state.db.transaction() as conn:
            await repo.save(conn, values, by=user.id)
    except (AnswerTemplateError, repo.TemplateNameTaken) as exc:
        async with request.app.state.db.connect() as conn:
            queues = await _queues(conn)
        return _form(request, values, queues, str(exc), status_code=400)
    except LookupError:
        raise HTTPException(404, "There is no such template.") from None
    flash(request, f"Template {values.name!r} saved.")
    return redirect(LIST_URL)


def _values(form: FormData, template_id: int | None) -> repo.TemplateValues:
    def text(name: str) -> str:
        value = form.get(name)
        return value if isinstance(value, str) else ""

    queue_ids = frozenset(
        int(v) for v in form.getlist("queues") if isinstance(v, str) and v.isdigit() and len(v) < 10
    )
    return repo.TemplateValues(
        id=template_id, name=" ".join(text("name").split()),
        text=text("text").replace("\r\n", "\n"), content_type=text("content_type") or "text/plain",
        comments=" ".join(text("comments").split()), valid=text("valid") == "1",
        queue_ids=queue_ids,
    )  # fmt: skip


async def delete_page(request: Request, user: WebUser) -> Response:
    template_id = _template_id(request)
    assert template_id is not None
    async with request.app.state.db.transaction() as conn:
        found = await repo.get_template(conn, template_id)
        if found is None:
            raise HTTPException(404, "There is no such template.")
        await repo.delete_template(conn, template_id)
    flash(request, f"Template {found.name!r} deleted.")
    return redirect(LIST_URL)


_ONE = "/admin/templates/{template_id:int}"
routes: list[BaseRoute] = [
    Route(LIST_URL, admin_page(list_page), methods=["GET"], name="answer_templates"),
    Route(LIST_URL + "/new", admin_page(edit_page), methods=["GET"]),
    Route(LIST_URL + "/new", admin_page(save_page), methods=["POST"]),
    Route(_ONE, admin_page(edit_page), methods=["GET"]),
    Route(_ONE, admin_page(save_page), methods=["POST"]),
    Route(_ONE + "/delete", admin_page(delete_page), methods=["POST"]),
]
