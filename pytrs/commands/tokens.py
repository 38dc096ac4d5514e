"""`pytrs tokens create|list|revoke`: bearer tokens of the JSON API.

Place in the flow: stored through `schema/api_tokens.py` (only the token's SHA-256 is kept);
the API's authentication (`web/api/auth.py`) reads them. `create` prints the token once on
stdout (so `TOKEN=$(pytrs tokens create …)` works) and a reminder to keep it on stderr. A token
acts as its agent, with that agent's queues, narrowed to its scope (read < write < admin); an
`admin` token is only made for an administrator.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timedelta

from pytrs.commands.database import opened
from pytrs.commands.failures import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CommandError
from pytrs.commands.output import add_json_options, fit, print_json
from pytrs.config import Config
from pytrs.schema import agent_access, api_tokens
from pytrs.schema.database import utcnow
from pytrs.vocabulary.times import iso, when

MAX_EXPIRES_DAYS = 3650


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("tokens", help="bearer tokens of the JSON API: create, list, revoke")
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a token for an agent; printed once")
    create.add_argument("--user", required=True, metavar="LOGIN", help="the agent it acts as")
    create.add_argument("--name", default="", help="what it is for (shown by `tokens list`)")
    create.add_argument("--expires", type=_days, metavar="DAYS",
                        help="valid for this many days (default: until revoked)")  # fmt: skip
    create.add_argument("--scope", choices=api_tokens.SCOPES, default="write",
                        help="read: GET only; write: also changes; admin: also admin "
                        "operations, for administrators only (default: write)")  # fmt: skip
    listing = actions.add_parser(
        "list", help="tokens with agent, scope and state (never the token)"
    )
    listing.add_argument("--user", metavar="LOGIN", help="only this agent's tokens")
    add_json_options(listing)
    revoke = actions.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("id", type=_token_id)


def _days(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_EXPIRES_DAYS:
        raise argparse.ArgumentTypeError(f"a number of days from 1 to {MAX_EXPIRES_DAYS}")
    return int(value)


def _token_id(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) < 2**31:
        raise argparse.ArgumentTypeError("a token id, as `pytrs tokens list` shows it")
    return int(value)


def run(config: Config, args: argparse.Namespace) -> int:
    handlers = {"create": _create, "list": _list, "revoke": _revoke}
    return handlers[args.action](config, args)


def _create(config: Config, args: argparse.Namespace) -> int:
    async def go() -> tuple[int, str]:
        async with opened(config) as db:
            account = await agent_access.by_login(db, args.user)
            if account is None:
                raise CommandError(f"tokens create: no such agent: {args.user}", EXIT_FAILED)
            if not account.valid:
                raise CommandError(f"tokens create: {args.user} is disabled", EXIT_FAILED)
            if args.scope == "admin" and not account.admin:
                raise CommandError(
                    f"tokens create: {args.user} is not an administrator: an admin token is "
                    "for administrators only; use --scope write or --scope read",
                    EXIT_USAGE,
                )
            now = utcnow()
            expires = now + timedelta(days=args.expires) if args.expires else None
            name = args.name.strip() or f"{args.scope} token of {args.user}"
            return await api_tokens.create(
                db, user_id=account.id, name=name, scope=args.scope, now=now, expires=expires
            )

    token_id, token = asyncio.run(go())
    print(token)
    print(
        f"token {token_id} for {args.user} (scope {args.scope}): keep it now, it is not "
        "shown again; revoke it with 'pytrs tokens revoke "
        f"{token_id}'",
        file=sys.stderr,
    )
    return EXIT_OK


_COLUMNS = (("ID", 5), ("USER", 16), ("NAME", 24), ("SCOPE", 5), ("HINT", 10),
            ("CREATED", 19), ("EXPIRES", 19), ("LAST USED", 19))  # fmt: skip


def _list(config: Config, args: argparse.Namespace) -> int:
    async def go() -> list[api_tokens.TokenRow]:
        async with opened(config) as db:
            user_id = None
            if args.user:
                account = await agent_access.by_login(db, args.user)
                if account is None:
                    raise CommandError(f"tokens list: no such agent: {args.user}", EXIT_FAILED)
                user_id = account.id
            return await api_tokens.listing(db, user_id=user_id)

    found = asyncio.run(go())
    now = utcnow()
    if print_json((_json(t, now) for t in found), args):
        return EXIT_OK
    print("  ".join(fit(title, width) for title, width in _COLUMNS) + "  STATE")
    for t in found:
        cells = (t.id, t.login, t.name, t.scope, t.hint, when(t.created), when(t.expires),
                 when(t.last_used))  # fmt: skip
        line = "  ".join(fit(c, w) for c, (_, w) in zip(cells, _COLUMNS, strict=True))
        print(f"{line}  {t.state(now)}")
    return EXIT_OK


def _json(t: api_tokens.TokenRow, now: datetime) -> dict[str, object]:
    return {
        "id": t.id, "user": t.login, "name": t.name, "scope": t.scope, "hint": t.hint,
        "created": iso(t.created), "expires": iso(t.expires), "last_used": iso(t.last_used),
        "revoked": iso(t.revoked), "state": t.state(now),
    }  # fmt: skip


def _revoke(config: Config, args: argparse.Namespace) -> int:
    async def go() -> bool:
        async with opened(config) as db:
            return await api_tokens.revoke(db, args.id, now=utcnow())

    if not asyncio.run(go()):
        raise CommandError(f"tokens revoke: no token {args.id} (see 'pytrs tokens list')")
    print(f"revoked token {args.id}: it authenticates nothing from now on")
    return EXIT_OK
