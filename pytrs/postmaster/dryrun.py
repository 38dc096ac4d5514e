"""A dry run of the postmaster on one mail: which rules match and why, and what routing would do.

Behind `pytrs filters test FILE.eml` (and, later, the web view's rule tester): the mail is
parsed, the stored rules are applied with explanations, the database is read (never written)
for the tickets the mail could belong to, and the routing decision is made exactly as the
worker would make it — except that no ticket number is allocated for a new ticket.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass

from pytrs.config import Config
from pytrs.gateway.addresses import AddressBook
from pytrs.parsers import ParsedMail, parse_mail
from pytrs.postmaster.filters import CompiledRules, FilterResult
from pytrs.postmaster.planning import (
    Parsed,
    Recognition,
    control_headers,
    is_ignored,
    lookup_keys,
    plan_batch,
    routing_input,
)
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.routing.decision import Decision
from pytrs.schema import filter_repo, known_repo, ticket_repo
from pytrs.schema.database import Database
from pytrs.schema.inbox_repo import ClaimedMessage, dedup_key


@dataclass(frozen=True, slots=True)
class DryRun:
    mail: ParsedMail
    rules: FilterResult  # with one explanation line per rule
    control: dict[str, str]  # control headers in force (the mail's own if trusted, then rules)
    ignored: bool
    decision: Decision | None  # None when ignored


async def dry_run(
    config: Config, db: Database, raw: bytes, *, trusted: bool = False, recipient: str = ""
) -> DryRun:
    """What the postmaster would do with `raw`, as if it arrived for `recipient` from a source
    that is `trusted` (or not) with control headers; changes nothing."""
    mail = parse_mail(raw, config.parser.limits())
    rules = CompiledRules.compile(await filter_repo.load_rules(db))
    explained = rules.apply(mail.headers, mail.body, explain=True)
    message = ClaimedMessage(
        0, raw, "dry-run", recipient, "", trusted, "", 0, "", dedup_key(raw)[1]
    )
    control, hits = control_headers(message, mail, rules)
    if is_ignored(control):
        return DryRun(mail, explained, control, True, None)
    addresses = AddressBook()
    await addresses.reload(db)
    worker = PostmasterWorker(_sends_nothing(config), db, addresses)
    recognition: Recognition = worker.recognition
    item = routing_input(message, mail, control, recognition)
    batch = [Parsed(message, mail, item, control, hits)]
    async with db.connect() as conn:
        lookup = await known_repo.load_known(conn, lookup_keys(batch, worker.numbers))
        queues = await ticket_repo.load_queues(conn)
    [plan] = plan_batch(batch, lookup.known, queues, worker.numbers, worker.policy())
    return DryRun(mail, explained, control, False, plan.decision)


def _sends_nothing(config: Config) -> Config:
    """`config` with a throwaway loop-marker key when it names none. A dry run never uses the
    worker's responder; without a key the worker warned "sends no mail" on every `filters
    test` (the daemon's key is in the database, and a dry run must not write one there)."""
    out = config.outbound
    if out.loop_secret or out.loop_secret_file:
        return config
    throwaway = dataclasses.replace(out, loop_secret=secrets.token_urlsafe(32))
    return dataclasses.replace(config, outbound=throwaway)


def describe(run: DryRun) -> list[str]:
    """The dry run as the lines `pytrs filters test` prints."""
    lines = list(run.rules.explanations)
    lines.append("control headers in force:" if run.control else "control headers in force: none")
    lines.extend(f"  {name}: {value}" for name, value in sorted(run.control.items()))
    if run.ignored or run.decision is None:
        lines.append("routing: ignore (X-PyTRS-Ignore); the mail would be kept without a ticket")
        return lines
    d = run.decision
    target = d.ticket.tn if d.ticket is not None and d.ticket.tn else ""
    summary = {
        "new_ticket": f"new ticket in queue {d.queue}",
        "follow_up": f"follow-up to ticket {target} (queue {d.queue})",
        "reject": f"rejected follow-up, stored on closed ticket {target}",
        "duplicate": f"already stored on ticket {target}: no second article",
    }[d.action.value]
    lines.append(f"routing: {summary}")
    if d.followup_via:
        lines.append(f"  found via: {d.followup_via}")
    if d.new_state:
        lines.append(f"  state → {d.new_state}")
    if d.internal:
        lines.append("  internal article, flagged for review")
    lines.extend(f"  because: {reason}" for reason in d.reasons)
    return lines
