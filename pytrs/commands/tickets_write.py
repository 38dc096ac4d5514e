"""`pytrs tickets reply|note|set|merge`: changing tickets from the command line.

Place in the flow: every change goes through the ticket service (`pytrs.tickets`), in one
transaction per command, exactly as the web view and the mail path make it — the same
articles, history rows and outbox rows; nothing here writes SQL. An answer is queued in the
outbox and sent by the daemon's outbound sender. The service's errors are one line each;
`failures.explain` gives them their exit code (a name that does not exist is a mistake in
the arguments, 2; anything else the ticket refuses is 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.commands.database import opened
from pytrs.commands.failures import EXIT_OK, EXIT_USAGE, CommandError
from pytrs.commands.stdin import read_stdin
from pytrs.config import Config
from pytrs.schema.system_data import with_runtime_secrets
from pytrs.tickets import (
    Actor,
    Changes,
    TicketMerged,
    TicketRecord,
    TicketService,
    TicketUpdate,
    UnknownName,
    queries,
)
from pytrs.vocabulary.moments import BadMoment, pending_time

# What a command does inside the transaction: (service, connection) → the JSON-able result.
_Work = Callable[[TicketService, AsyncConnection], Awaitable[dict[str, Any]]]


def reply(config: Config, args: argparse.Namespace) -> int:
    body = _body(args.file, "answer")

    async def work(service: TicketService, conn: AsyncConnection) -> dict[str, Any]:
        found = await _find(service, conn, args.tn)
        actor = await _actor(service, conn, args.login)
        sent = await service.reply(
            conn, found.id, actor=actor, body=body, cc=list(args.cc), state=args.state
        )
        return {
            "tn": found.tn,
            "article_id": sent.article_id,
            "message_id": sent.message_id,
            "recipients": list(sent.recipients),
        }

    result = _run(config, work)
    return _report(
        args,
        result,
        f"ticket {result['tn']}: answer queued for "
        f"{', '.join(result['recipients'])} (article {result['article_id']})",
    )


def note(config: Config, args: argparse.Namespace) -> int:
    body = _body(args.file, "note")

    async def work(service: TicketService, conn: AsyncConnection) -> dict[str, Any]:
        found = await _find(service, conn, args.tn)
        actor = await _actor(service, conn, args.login)
        article_id = await service.note(
            conn, found.id, actor=actor, body=body, subject=args.subject
        )
        return {"tn": found.tn, "article_id": article_id}

    result = _run(config, work)
    return _report(
        args, result, f"ticket {result['tn']}: note added (article {result['article_id']})"
    )


def change(config: Config, args: argparse.Namespace) -> int:
    update = TicketUpdate(
        state=args.state,
        pending_until=_pending(config, args.pending),
        sla=args.sla,
        priority=args.priority,
        queue=args.queue,
        owner=args.owner,
        responsible=args.responsible,
        lock=args.lock,
        title=args.title,
        type=args.type,
        customer_user=args.customer_user,
        customer_id=args.customer_id,
    )
    if update == TicketUpdate():
        raise CommandError(
            "tickets set: nothing to change: give --state, --pending, --sla, --priority, "
            "--queue, --owner, --responsible, --lock, --title, --type, --customer-user or "
            "--customer-id",
            EXIT_USAGE,
        )

    async def work(service: TicketService, conn: AsyncConnection) -> dict[str, Any]:
        found = await _find(service, conn, args.tn)
        actor = await _actor(service, conn, args.login)
        changes = await service.update(conn, found.id, update, actor=actor)
        return {"tn": found.tn, "changed": _changed(changes)}

    result = _run(config, work)
    changed = result["changed"]
    said = ", ".join(f"{key} {value['from']!r} → {value['to']!r}" for key, value in changed.items())
    return _report(args, result, f"ticket {result['tn']}: " + (said or "nothing changed"))


def _pending(config: Config, text: str | None) -> int | None:
    """The epoch seconds of `--pending` (local times in [scheduler] timezone), or None."""
    if text is None:
        return None
    try:
        return pending_time(text, int(time.time()), config.scheduler.timezone)
    except BadMoment as exc:
        raise CommandError(f"tickets set --pending: {exc}", EXIT_USAGE) from exc


def merge(config: Config, args: argparse.Namespace) -> int:
    async def work(service: TicketService, conn: AsyncConnection) -> dict[str, Any]:
        source = await _find(service, conn, args.tn)
        target = await _find(service, conn, args.into)
        actor = await _actor(service, conn, args.login)
        await service.merge(conn, source.id, into=target.id, actor=actor)
        return {"tn": source.tn, "merged_into": target.tn}

    result = _run(config, work)
    return _report(args, result, f"ticket {result['tn']}: merged into {result['merged_into']}")


def _run(config: Config, work: _Work) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with opened(config) as db:
            # An answer carries the installation's loop marker, kept in the database.
            service = TicketService.from_config(await with_runtime_secrets(db, config))
            async with db.transaction() as conn:
                return await work(service, conn)

    return asyncio.run(go())


async def _find(service: TicketService, conn: AsyncConnection, tn: str) -> TicketRecord:
    """Ticket number `tn`; a merged one is refused here, naming the ticket it went into (the
    service's own refusal cannot know it)."""
    found = await service.find(conn, tn)
    if found.merged:
        target = await queries.merged_into(conn, found.id)
        where = f"into {target}: work on that one" if target else "into another ticket"
        raise TicketMerged(f"ticket {found.tn} was merged {where}")
    return found


async def _actor(service: TicketService, conn: AsyncConnection, login: str | None) -> Actor:
    """The agent `--as` names, or the system user when none is named."""
    if not login:
        return Actor.SYSTEM
    try:
        return await service.agent(conn, login)
    except UnknownName as exc:
        # [[agents]] reach the `users` table when the daemon starts (provisioning).
        raise CommandError(
            f"--as {login}: {exc}; agents are the [[agents]] of the configuration, in the "
            "database once the daemon has started with them",
            EXIT_USAGE,
        ) from exc


def _changed(changes: Changes) -> dict[str, dict[str, str]]:
    """What `service.update` reports changed, as field → {"from", "to"}."""
    return {item.field: {"from": item.old, "to": item.new} for item in changes.fields}


def _report(args: argparse.Namespace, result: dict[str, Any], line: str) -> int:
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(line)
    return EXIT_OK


def _body(path: str | None, what: str) -> str:
    """The text of an answer or note: from `path`, else standard input; never empty."""
    where = path if path and path != "-" else "standard input"
    if where == path:
        raw = Path(where).read_bytes()  # an OSError names the file: exit 2 (failures.py)
    else:
        if sys.stdin is not None and sys.stdin.isatty():
            print(f"reading the {what} from standard input; end it with Ctrl-D", file=sys.stderr)
        raw = read_stdin()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{where}: the {what} is not UTF-8 text", EXIT_USAGE) from exc
    if not text.strip():
        raise CommandError(f"{where}: the {what} is empty", EXIT_USAGE)
    if "\x00" in text:  # no mail and no database text column takes it
        raise CommandError(f"{where}: the {what} holds a NUL character", EXIT_USAGE)
    return text
