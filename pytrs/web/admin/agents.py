"""`/admin/agents`: agents and admins — list, add, edit role, queues, name and address, reset
the password, disable and enable.

Place in the flow: the same rows and rules as `pytrs users` (`schema/users_repo.py`; logins
and addresses checked by `config/checks.py`, passwords by `users/passwords.py`), with the
signed-in admin recorded as the author of each change. An admin cannot disable or demote
themself: the last admin could otherwise lock everybody out of these pages.

An agent the configuration's `[[agents]]` names gets its address, validity and queue access
from the file again at every start, so those are shown read-only ("managed by the
configuration file") and an edit of them is refused; its name, role and password (the file
has none) stay editable here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.config.checks import login_name, single_address
from pytrs.schema import queue_repo, users_repo
from pytrs.schema.tables import users
from pytrs.schema.users_repo import Change, NewUser, UnknownQueue, UserExists, UserRow
from pytrs.users import passwords
from pytrs.web.access import WebUser, admin_page
from pytrs.web.admin import column_problem, form_fields, row_id
from pytrs.web.pages import flash, redirect, render

ROLES = ("agent", "admin")
KEYS = ("rw", "ro")
BLANK = {"login": "", "email": "", "name": "", "role": "agent", "all_queues": ""}


@admin_page
async def agent_list(request: Request, user: WebUser) -> Response:
    return await _list_page(request, BLANK, "")


async def _list_page(request: Request, form: dict[str, str], error: str) -> Response:
    db = request.app.state.db
    context = {
        "rows": await users_repo.listing(db),
        "queues": await _queues(request),
        "form": form,
        "error": error,
        "roles": ROLES,
        "keys": KEYS,
    }
    return render(request, "admin/agents.html", context, status_code=400 if error else 200)


async def _queues(request: Request) -> list[tuple[int, str]]:
    async with request.app.state.db.connect() as conn:
        return [(q.id, q.values.name) for q in await queue_repo.queues(conn)]


@admin_page
async def agent_add(request: Request, user: WebUser) -> Response:
    form = {**BLANK, **await form_fields(request)}
    login = form["login"].strip()
    profile = await _profile(request, form)
    problem = (
        login_name(login)
        or column_problem("login", users.c.login, login)
        or (profile if isinstance(profile, str) else None)
        or _password_problem(form)
    )
    if problem or isinstance(profile, str):
        return await _list_page(request, form, problem or "")
    pw = await asyncio.to_thread(passwords.hash_password, form.get("password", ""))
    new = NewUser(
        login=login,
        email=profile.email,
        pw=pw,
        first_name=profile.first_name,
        last_name=profile.last_name,
        admin=profile.admin,
        queues=profile.queues,
        all_queues=profile.all_queues,
        permission=profile.permission,
    )
    try:
        await users_repo.add(request.app.state.db, new, by=user.id)
    except UserExists:
        return await _list_page(request, form, f"login {login}: the login exists")
    except UnknownQueue as exc:
        return await _list_page(request, form, f"no such queue: {exc}")
    flash(request, f"Added {'admin' if profile.admin else 'agent'} {login}.")
    return redirect("/admin/agents")


@admin_page
async def agent_edit(request: Request, user: WebUser) -> Response:
    found = await _account(request)
    return await _edit_page(request, found, _form_of(found), "")


async def _edit_page(request: Request, row: UserRow, form: dict[str, Any], error: str) -> Response:
    context = {
        "row": row,
        "queues": await _queues(request),
        "form": form,
        "error": error,
        "roles": ROLES,
        "keys": KEYS,
    }
    return render(request, "admin/agents_edit.html", context, status_code=400 if error else 200)


@admin_page
async def agent_update(request: Request, user: WebUser) -> Response:
    found = await _account(request)
    if found.provisioned:
        return await _managed_update(request, user, found)
    form = {**BLANK, **await form_fields(request)}
    change = await _profile(request, form)
    if isinstance(change, str):
        return await _edit_page(request, found, form, change)
    if found.id == user.id and not change.admin:
        return await _edit_page(request, found, form, "you cannot demote yourself")
    try:
        await users_repo.change(request.app.state.db, found.login, change, by=user.id)
    except UnknownQueue as exc:
        return await _edit_page(request, found, form, f"no such queue: {exc}")
    flash(request, f"Saved {found.login}.")
    return redirect(f"/admin/agents/{found.id}")


MANAGED = "{}: the e-mail address, validity and queue access are managed by the configuration file"


async def _managed_update(request: Request, user: WebUser, found: UserRow) -> Response:
    """Name and role of an agent the file manages; any change of what the file owns is
    refused (the next start would undo it)."""
    form = {**_form_of(found), **await form_fields(request)}
    if _touches_owned(form, found):
        return await _edit_page(request, found, _form_of(found), MANAGED.format(found.login))
    name = form.get("name", "").strip()
    first, _, last = (name or found.login).partition(" ")
    problem = (
        column_problem("name", users.c.first_name, first)
        or column_problem("name", users.c.last_name, last.strip())
        or (None if form.get("role") in ROLES else "role: choose agent or admin")
        or (
            "you cannot demote yourself"
            if found.id == user.id and form["role"] != "admin"
            else None
        )
    )
    if problem:
        return await _edit_page(request, found, {**_form_of(found), **form}, problem)
    admin = form["role"] == "admin"
    await users_repo.rename(
        request.app.state.db, found.login, first, last.strip(), admin, by=user.id
    )
    flash(request, f"Saved {found.login}.")
    return redirect(f"/admin/agents/{found.id}")


def _touches_owned(form: dict[str, Any], found: UserRow) -> bool:
    """Whether the form sets what the file owns: another address, or any queue access."""
    other_address = form["email"].strip().lower() != found.email.lower()
    queues = form.get("all_queues") or any(key.startswith("queue.") for key in form)
    return other_address or bool(queues)


@admin_page
async def agent_password(request: Request, user: WebUser) -> Response:
    found = await _account(request)
    form = await form_fields(request)
    problem = _password_problem(form)
    if problem:
        flash(request, problem, "error")
        return redirect(f"/admin/agents/{found.id}")
    pw = await asyncio.to_thread(passwords.hash_password, form["password"])
    await users_repo.set_password(request.app.state.db, found.login, pw, by=user.id)
    flash(request, f"Password of {found.login} changed.")
    return redirect(f"/admin/agents/{found.id}")


@admin_page
async def agent_validity(request: Request, user: WebUser) -> Response:
    found = await _account(request)
    if found.provisioned:
        flash(request, MANAGED.format(found.login), "error")
        return redirect(f"/admin/agents/{found.id}")
    enable = (await form_fields(request)).get("valid") == "1"
    if not enable and found.id == user.id:
        flash(request, "you cannot disable yourself", "error")
        return redirect(f"/admin/agents/{found.id}")
    action = users_repo.enable if enable else users_repo.disable
    await action(request.app.state.db, found.login, by=user.id)
    done = "enabled" if enable else "disabled: it can no longer sign in"
    flash(request, f"{found.login} {done}.")
    return redirect(f"/admin/agents/{found.id}")


async def _account(request: Request) -> UserRow:
    wanted = row_id(request.path_params["user_id"])
    found = await users_repo.one(request.app.state.db, user_id=wanted) if wanted else None
    if found is None:
        raise HTTPException(404, "There is no such agent.")
    return found


async def _profile(request: Request, form: dict[str, str]) -> Change | str:
    """Name, address, role and queues as the form gives them, or the first problem."""
    email, name = form["email"].strip(), form["name"].strip()
    first, _, last = (name or form.get("login", "").strip()).partition(" ")
    problem = (
        (f"email {single_address(email)}" if single_address(email) else None)
        or column_problem("email", users.c.email, email)
        or column_problem("name", users.c.first_name, first)
        or column_problem("name", users.c.last_name, last.strip())
        or (None if form["role"] in ROLES else "role: choose agent or admin")
        or (None if form["all_queues"] in ("", *KEYS) else "all queues: choose rw, ro or none")
    )
    if problem:
        return problem
    names = dict(await _queues(request))
    chosen = {names[i]: form.get(f"queue.{i}", "") for i in names}
    return Change(
        first_name=first,
        last_name=last.strip(),
        email=email,
        admin=form["role"] == "admin",
        queues={name: key for name, key in chosen.items() if key in KEYS},
        all_queues=bool(form["all_queues"]),
        permission=form["all_queues"] or "rw",
    )


def _password_problem(form: dict[str, str]) -> str | None:
    password = form.get("password", "")
    try:
        passwords.check(password)
    except passwords.WeakPassword as exc:
        return str(exc)
    return None if password == form.get("password2") else "the passwords differ"


def _form_of(row: UserRow) -> dict[str, Any]:
    return {
        "login": row.login,
        "email": row.email,
        "name": row.name,
        "role": "admin" if row.admin else "agent",
        "all_queues": "",
        "access": row.queues,
    }


routes: list[BaseRoute] = [
    Route("/admin/agents", agent_list, methods=["GET"]),
    Route("/admin/agents", agent_add, methods=["POST"]),
    Route("/admin/agents/{user_id}", agent_edit, methods=["GET"]),
    Route("/admin/agents/{user_id}", agent_update, methods=["POST"]),
    Route("/admin/agents/{user_id}/password", agent_password, methods=["POST"]),
    Route("/admin/agents/{user_id}/validity", agent_validity, methods=["POST"]),
]
