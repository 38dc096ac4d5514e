"""`/api/v1/users`: agents and admins — list, show, add, change, set a password (admin only).

Place in the flow: the API's door to the same rows and rules as `pytrs users` and the admin
page `/admin/agents` (`schema/users_repo.py`; logins and addresses checked by
`config/checks.py`, passwords by `users/passwords.py` and hashed with argon2id), with the
token's user recorded as the author of each change. Password hashes never leave the database.

An admin cannot disable or demote themself (the last admin could otherwise lock everybody
out), and an account the configuration's `[[agents]]` names keeps the address, validity and
queue access the file gives it: a change of those is refused, as on the admin page.
"""

from __future__ import annotations

import asyncio

from pytrs.schema import storable, users_repo
from pytrs.schema.tables import users
from pytrs.schema.users_repo import Change, NewUser, UnknownQueue, UserExists, UserRow
from pytrs.users import passwords
from pytrs.web.api.operations import Context, Operations
from pytrs.web.api.paging import Page, PageQuery
from pytrs.web.api.problems import Problem
from pytrs.web.api.resources.admin_support import field_problem, page_of, read_cursor
from pytrs.web.api.resources.users_models import NewPassword, UserChange, UserCreate, UserOut

api = Operations(tag="users", description="Agent and admin accounts (administrators only).")

FIRST_NAME_CHARS = storable.column_limit(users.c.first_name) or 100
MANAGED = (
    "{}: the e-mail address, validity and queue access are managed by the configuration "
    "file ([[agents]]); change them there, or change only the name, role or password here."
)


@api.get(
    "/users",
    access="admin",
    query=PageQuery,
    response=Page[UserOut],
    summary="Agents and admins, by login",
)
async def list_users(ctx: Context, query: PageQuery) -> Page[UserOut]:
    """Every account but the system user, in login order, a page at a time."""
    after = read_cursor(query.cursor, str)
    rows = await users_repo.listing(ctx.db, after=after, limit=query.limit + 1)
    page, cursor = page_of(rows, query.limit, lambda row: row.login)
    return Page[UserOut](items=[UserOut.of(r) for r in page], next_cursor=cursor)


@api.get("/users/{login}", access="admin", response=UserOut, summary="One account")
async def get_user(ctx: Context, login: str) -> UserOut:
    return UserOut.of(await _account(ctx, login))


@api.post(
    "/users",
    access="admin",
    body=UserCreate,
    response=UserOut,
    status=201,
    problems=("conflict", "unknown-name"),
    summary="Add an agent or admin",
)
async def create_user(ctx: Context, body: UserCreate) -> UserOut:
    """Add an account as `pytrs users add` does: the login must be free (409 otherwise), the
    queues must exist (422 `unknown-name`)."""
    first, last = _names(body.name, body.login)
    pw = "" if body.password is None else await asyncio.to_thread(_hash, body.password)
    new = NewUser(
        login=body.login,
        email=body.email,
        pw=pw,
        first_name=first,
        last_name=last,
        admin=body.role == "admin",
        queues=dict(body.queues),
    )
    try:
        await users_repo.add(ctx.db, new, by=ctx.user.id)
    except UserExists:
        raise Problem(
            409, "conflict", f"The login {body.login!r} is taken; choose another login."
        ) from None
    except UnknownQueue as exc:
        raise _unknown_queue(exc) from None
    return UserOut.of(await _account(ctx, body.login))


@api.patch(
    "/users/{login}",
    access="admin",
    body=UserChange,
    response=UserOut,
    problems=("unknown-name", "managed-by-configuration", "own-account"),
    summary="Change an account's address, name, role, queues or validity",
)
async def change_user(ctx: Context, login: str, body: UserChange) -> UserOut:
    """Change what the body gives; the rest stays. Queues, when given, replace all of the
    account's access. Refused: demoting or disabling yourself (422 `own-account`), and for an
    account the configuration file manages, any change of its address, validity or queues
    (409 `managed-by-configuration`)."""
    found = await _account(ctx, login)
    if found.id == ctx.user.id and (body.role == "agent" or body.valid is False):
        raise Problem(
            422,
            "own-account",
            "You cannot demote or disable your own account; ask another admin to do it.",
        )
    if found.provisioned:
        await _change_managed(ctx, found, body)
    else:
        await _change(ctx, found, body)
    return UserOut.of(await _account(ctx, login))


async def _change(ctx: Context, found: UserRow, body: UserChange) -> None:
    first, last = _new_names(body, found)
    role = body.role or ("admin" if found.admin else "agent")
    change = Change(
        first_name=first,
        last_name=last,
        email=found.email if body.email is None else body.email,
        admin=role == "admin",
        queues=found.queues if body.queues is None else dict(body.queues),
    )
    try:
        await users_repo.change(ctx.db, found.login, change, by=ctx.user.id)
    except UnknownQueue as exc:
        raise _unknown_queue(exc) from None
    if body.valid is not None and body.valid != found.valid:
        action = users_repo.enable if body.valid else users_repo.disable
        await action(ctx.db, found.login, by=ctx.user.id)


async def _change_managed(ctx: Context, found: UserRow, body: UserChange) -> None:
    """Name and role only: what the file owns may be repeated as it is, never changed."""
    other_address = body.email is not None and body.email.lower() != found.email.lower()
    other_queues = body.queues is not None and dict(body.queues) != found.queues
    other_validity = body.valid is not None and body.valid != found.valid
    if other_address or other_queues or other_validity:
        raise Problem(409, "managed-by-configuration", MANAGED.format(found.login))
    first, last = _new_names(body, found)
    admin = found.admin if body.role is None else body.role == "admin"
    await users_repo.rename(ctx.db, found.login, first, last, admin, by=ctx.user.id)


@api.post(
    "/users/{login}/password",
    access="admin",
    body=NewPassword,
    response=None,
    status=204,
    summary="Set an account's password",
)
async def set_password(ctx: Context, login: str, body: NewPassword) -> None:
    """Store the argon2id hash of a new password, as `pytrs users passwd` does."""
    found = await _account(ctx, login)
    pw = await asyncio.to_thread(_hash, body.password)
    await users_repo.set_password(ctx.db, found.login, pw, by=ctx.user.id)


def _hash(password: str) -> str:
    # Hashing costs tens of milliseconds of CPU: run in a thread, off the event loop.
    return passwords.hash_password(password)


async def _account(ctx: Context, login: str) -> UserRow:
    found = await users_repo.one(ctx.db, login=login)
    if found is None:
        raise Problem(404, "not-found", f"There is no account with the login {login!r}.")
    return found


def _names(name: str, login: str) -> tuple[str, str]:
    """First and last name of "First Last" (the login when empty), or a 422 naming `name`."""
    # A login may be longer than a first name: as the name's default it is cut to fit.
    first, _, last = (name or login[:FIRST_NAME_CHARS]).partition(" ")
    last = last.strip()
    for part in (first, last):
        problem = storable.problem(users.c.first_name, part)
        if problem:
            raise field_problem("name", f"each part of the name: {problem}")
    return first, last


def _new_names(body: UserChange, found: UserRow) -> tuple[str, str]:
    if body.name is None:
        return found.first_name, found.last_name
    return _names(body.name, found.login)


def _unknown_queue(exc: UnknownQueue) -> Problem:
    return Problem(
        422, "unknown-name", f"There is no queue named {exc}; give names of existing queues."
    )
