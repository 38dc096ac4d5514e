"""`pytrs users add|passwd|list|disable`: agents and admins, the accounts the web will sign in.

Place in the flow: stored in Znuny's `users` (argon2id hash in `pw`, see `users/passwords.py`)
and `group_user` through `schema/users_repo.py`, so `[[agents]]` and the web share one notion
of agent. A password is read from the first line of stdin (`--password-stdin`) or asked twice
when stdin is a terminal; it is never taken as an argument (it would show in `ps`).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from dataclasses import replace

from pytrs.commands.database import opened
from pytrs.commands.failures import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CommandError
from pytrs.commands.output import add_json_options, fit, print_json
from pytrs.config import Config
from pytrs.config.checks import login_name, single_address
from pytrs.schema import users_repo
from pytrs.schema.users_repo import NewUser, NoSuchUser, UnknownQueue, UserExists
from pytrs.users import passwords


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("users", help="agents and admins: add, passwd, list, disable")
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create an agent or admin account")
    add.add_argument("login")
    add.add_argument("--email", required=True, help="the agent's address (one)")
    add.add_argument("--role", choices=("agent", "admin"), required=True,
                     help="admin: also a member (rw) of group `admin`")  # fmt: skip
    access = add.add_mutually_exclusive_group()
    access.add_argument(
        "--queues", default="", metavar="Q1,Q2",
        help="access to these queues, given on each queue's group: queues that share a group "
        "share access",
    )  # fmt: skip
    access.add_argument(
        "--all-queues", action="store_true",
        help="access to every group a valid queue uses now (queues added later are not "
        "included unless they share one of those groups)",
    )  # fmt: skip
    add.add_argument("--read-only", action="store_true", help="`ro` on the queues, not `rw`")
    add.add_argument("--name", default="", help='"First Last" (default: the login)')
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin")  # fmt: skip
    passwd = actions.add_parser("passwd", help="set a new password")
    passwd.add_argument("login")
    passwd.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin")  # fmt: skip
    listing = actions.add_parser("list", help="accounts with role, queues and validity (no hashes)")
    add_json_options(listing)
    disable = actions.add_parser("disable", help="set valid_id = 2: the account cannot sign in")
    disable.add_argument("login")


def run(config: Config, args: argparse.Namespace) -> int:
    handlers = {"add": _add, "passwd": _passwd, "list": _list, "disable": _disable}
    return handlers[args.action](config, args)


def _add(config: Config, args: argparse.Namespace) -> int:
    problem = login_name(args.login)
    if problem:
        raise CommandError(f"users add: {problem}", EXIT_USAGE)
    problem = single_address(args.email)
    if problem:
        raise CommandError(f"users add: --email {problem}", EXIT_USAGE)
    queues = tuple(name.strip() for name in args.queues.split(",") if name.strip())
    first, _, last = (args.name.strip() or args.login).partition(" ")
    new = NewUser(
        login=args.login, email=args.email, pw="", first_name=first, last_name=last.strip(),
        admin=args.role == "admin", queues=queues, all_queues=args.all_queues,
        permission="ro" if args.read_only else "rw",
    )  # fmt: skip

    async def go() -> None:
        async with opened(config) as db:
            # Checked before the password is asked: a taken login should not cost a prompt.
            if await users_repo.exists(db, args.login):
                raise CommandError(f"users add: {args.login}: the login exists", EXIT_FAILED)
            pw = _hashed(args, "users add")
            try:
                await users_repo.add(db, replace(new, pw=pw))
            except UserExists as exc:
                raise CommandError(f"users add: {exc}: the login exists", EXIT_FAILED) from exc
            except UnknownQueue as exc:
                raise CommandError(f"users add: no such queue: {exc}", EXIT_USAGE) from exc

    asyncio.run(go())
    print(f"added {args.role} {args.login}")
    return EXIT_OK


def _passwd(config: Config, args: argparse.Namespace) -> int:
    async def go() -> None:
        async with opened(config) as db:
            if not await users_repo.exists(db, args.login):
                raise CommandError(f"users passwd: no such login: {args.login}", EXIT_FAILED)
            pw = _hashed(args, "users passwd")
            try:
                await users_repo.set_password(db, args.login, pw)
            except NoSuchUser as exc:
                raise CommandError(f"users passwd: no such login: {exc}", EXIT_FAILED) from exc

    asyncio.run(go())
    print(f"password of {args.login} changed")
    return EXIT_OK


def _disable(config: Config, args: argparse.Namespace) -> int:
    async def go() -> None:
        async with opened(config) as db:
            await users_repo.disable(db, args.login)

    try:
        asyncio.run(go())
    except NoSuchUser as exc:
        raise CommandError(f"users disable: no such login: {exc}", EXIT_FAILED) from exc
    print(f"disabled {args.login} (valid_id = 2: it can no longer sign in)")
    return EXIT_OK


_COLUMNS = (("LOGIN", 16), ("NAME", 20), ("EMAIL", 28), ("ROLE", 5), ("VALID", 5))


def _list(config: Config, args: argparse.Namespace) -> int:
    async def go() -> list[users_repo.UserRow]:
        async with opened(config) as db:
            return await users_repo.listing(db)

    found = asyncio.run(go())
    if print_json((_json(user) for user in found), args):
        return EXIT_OK
    print("  ".join(fit(title, width) for title, width in _COLUMNS) + "  QUEUES")
    for user in found:
        role = "admin" if user.admin else "agent"
        cells = (user.login, user.name, user.email, role, "yes" if user.valid else "no")
        line = "  ".join(fit(c, w) for c, (_, w) in zip(cells, _COLUMNS, strict=True))
        queues = ", ".join(f"{name} ({key})" for name, key in user.queues.items())
        print(f"{line}  {queues or '-'}")
    return EXIT_OK


def _json(user: users_repo.UserRow) -> dict[str, object]:
    return {
        "login": user.login, "name": user.name, "email": user.email,
        "role": "admin" if user.admin else "agent", "queues": user.queues, "valid": user.valid,
    }  # fmt: skip


def _hashed(args: argparse.Namespace, command: str) -> str:
    """The argon2id hash of the password read as asked; exit 2 for an empty or short one."""
    password = _read_password(args, command)
    try:
        return passwords.hash_password(password)
    except passwords.WeakPassword as exc:
        raise CommandError(f"{command}: {exc}", EXIT_USAGE) from exc


def _read_password(args: argparse.Namespace, command: str) -> str:
    if args.password_stdin:
        if sys.stdin is None:
            raise CommandError(f"{command}: --password-stdin: standard input is closed", EXIT_USAGE)
        return sys.stdin.readline().rstrip("\r\n")
    if sys.stdin is None or not sys.stdin.isatty():
        raise CommandError(
            f"{command}: no terminal to ask the password on: give --password-stdin", EXIT_USAGE
        )
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise CommandError(f"{command}: the passwords differ", EXIT_USAGE)
    return first
