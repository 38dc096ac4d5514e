"""A dry run of the postmaster on one mail: which rules match and why, and what routing would do.

Behind `pytrs filters test FILE.eml` and the web's test bench (`web.admin.filter_bench`): the
mail is prepared with the worker's own routing set-up (`routing_setup`: parse, control headers,
the stored rules or a set being edited, routing input), the rules are explained on the
headers they saw, the database is read (never written) for the tickets the mail could belong
to, and the decision is made as the worker would make it. What a dry run cannot know is said
in its output (`UNKNOWN`): no ticket number is allocated for a new ticket, and mail from an
agent's address is checked without DKIM, which needs DNS (a reply token or a trusted
Authentication-Results header still count).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytrs.authentication.authenticity import AgentAuthenticator, Verdict
from pytrs.config import Config
from pytrs.gateway.addresses import AddressBook
from pytrs.parsers import ParsedMail
from pytrs.postmaster.agents import identify_agents
from pytrs.postmaster.filters import CompiledRules, FilterResult, Rule
from pytrs.postmaster.planning import is_ignored, lookup_keys, rule_headers
from pytrs.postmaster.routing_setup import RoutingSetup
from pytrs.routing.decision import Decision
from pytrs.schema import filter_repo, known_repo, ticket_repo
from pytrs.schema.database import Database
from pytrs.schema.inbox_repo import ClaimedMessage, dedup_key

# What the dry run cannot tell, printed after the decision.
UNKNOWN = (
    "the number of a new ticket (allocated when the mail is stored)",
    "DKIM signatures of mail from an agent's address (checking them needs DNS)",
    "whether the mail would wait for its parent or first copy still in the inbox",
)


@dataclass(frozen=True, slots=True)
class DryRun:
    mail: ParsedMail
    rules: FilterResult  # with one explanation line per rule
    control: dict[str, str]  # control headers in force (the mail's own if trusted, then rules)
    ignored: bool
    decision: Decision | None  # None when ignored
    agent: Verdict | None = None  # how mail from an agent's address authenticated (no DKIM)


async def dry_run(
    config: Config,
    db: Database,
    raw: bytes,
    *,
    trusted: bool = False,
    recipient: str = "",
    rules: Sequence[Rule] | None = None,
) -> DryRun:
    """What the postmaster would do with `raw`, as if it arrived for `recipient` from a source
    that is `trusted` (or not) with control headers; changes nothing and asks no DNS.

    `rules` (a set being edited, not yet saved) stand in for the stored ones when given.
    Raises RuleError when the rules do not compile.
    """
    routing = RoutingSetup.from_config(config)
    if rules is None:
        rules = await filter_repo.load_rules(db)
    compiled = CompiledRules.compile(rules)
    message = ClaimedMessage(
        0, raw, "dry-run", recipient, "", trusted, "", 0, "", dedup_key(raw)[1]
    )
    parsed = routing.prepare(message, compiled)
    mail, control = parsed.mail, parsed.control
    explained = compiled.apply(rule_headers(message, mail), mail.body, explain=True)
    if is_ignored(control):
        return DryRun(mail, explained, control, True, None)
    authenticator = AgentAuthenticator(config, dkim=False)
    await identify_agents(db, authenticator, routing.numbers, [parsed])
    addresses = AddressBook()
    await addresses.reload(db)
    async with db.connect() as conn:
        lookup = await known_repo.load_known(conn, lookup_keys([parsed], routing.numbers))
        queues = await ticket_repo.load_queues(conn)
    [plan] = routing.plan([parsed], lookup.known, queues, addresses.queues_by_address)
    return DryRun(mail, explained, control, False, plan.decision, parsed.agent_check)


def describe(run: DryRun) -> list[str]:
    """The dry run as the lines `pytrs filters test` prints."""
    lines = list(run.rules.explanations)
    lines.append("control headers in force:" if run.control else "control headers in force: none")
    lines.extend(f"  {name}: {value}" for name, value in sorted(run.control.items()))
    return lines + describe_routing(run)


def describe_routing(run: DryRun) -> list[str]:
    """The routing decision's lines of `describe`, and what a dry run cannot know."""
    if run.ignored or run.decision is None:
        return ["routing: ignore (X-PyTRS-Ignore); the mail would be kept without a ticket"]
    lines: list[str] = []
    if run.agent is not None:
        verdict = "authenticated" if run.agent.authenticated else "not authenticated"
        lines.append(f"agent mail: {verdict}: {run.agent.detail}")
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
    lines.append("not known in a dry run:")
    lines.extend(f"  {what}" for what in UNKNOWN)
    return lines
