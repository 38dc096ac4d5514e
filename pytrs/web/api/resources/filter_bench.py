"""`POST /api/v1/filters/test`: what the filter rules and routing would do with one raw mail.

Place in the flow: the API's test bench, the same dry run as `pytrs filters test` and the web
bench (`postmaster.dryrun`: the worker's own parse, control headers, rules and routing, reading
the database and writing nothing). The mail comes as JSON text (`mail`), as base64
(`mail_base64`, for bytes that are not UTF-8) or as a multipart file part. A rule not yet
saved can be tried in place of the stored rule of its name. Like the CLI, the bench refuses
to run rules that would not work as stored (422 `invalid-rule` naming each wrong row).
"""

from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, ConfigDict, Field

from pytrs.postmaster.dryrun import UNKNOWN, DryRun, describe_routing, dry_run
from pytrs.postmaster.filter_rules import check_rules
from pytrs.postmaster.filters import Verdict
from pytrs.schema.filter_repo import load_rules
from pytrs.web.admin.filter_bench import BenchInput
from pytrs.web.admin.filters import with_rule
from pytrs.web.api.operations import Context, Operations
from pytrs.web.api.resources.admin_support import field_problem
from pytrs.web.api.resources.filters import DESCRIBED, FilterRuleIn, refused

api = Operations(tag="filters", description=DESCRIBED)

MAX_MIB = BenchInput.MAX_BYTES // (1024 * 1024)
MAIL = "invalid-mail"  # the problem of a mail missing, given twice, or unusable
# The bench's largest mail as JSON: base64 adds a third, escapes in text up to as much again.
MAX_BODY = 2 * BenchInput.MAX_BYTES


class FilterTest(BaseModel):
    """A mail to test, how it arrived, and optionally a rule not yet saved."""

    model_config = ConfigDict(extra="forbid")

    mail: str | None = Field(None, description="The raw mail as text (header, blank line, body).")
    mail_base64: str | None = Field(
        None, description="The raw mail's bytes in base64, for mail that is not UTF-8 text."
    )
    recipient: str = Field("", description="The envelope recipient, as if delivered there.")
    trusted: bool = Field(
        False, description="Honour the mail's own X-PyTRS-* headers, as from a trusted source."
    )
    rule: FilterRuleIn | None = Field(
        None,
        description="A rule to try in place of the stored rule of the same name (or in "
        "addition, for a new name); nothing is saved. In a multipart request: its JSON text.",
    )


class HeaderValue(BaseModel):
    header: str = Field(description="A header name.")
    value: str = Field(description="Its value (matched text, or what a rule set).")


class RuleVerdict(BaseModel):
    """What one rule did with the mail, and why."""

    rule: str = Field(description="The rule's name.")
    outcome: str = Field(description="`matched`, `not matched` or `not run` (stopped before).")
    why: str = Field(description="For `not matched` the row that failed and the value it saw.")
    matched: list[HeaderValue] = Field(description="Each match row's header and matched text.")
    set: list[HeaderValue] = Field(description="The control headers this rule set.")


class RoutingOutcome(BaseModel):
    """The routing decision the worker would make."""

    action: str = Field(
        description="`new_ticket`, `follow_up`, `reject` (stored on a closed ticket), "
        "`duplicate`, or `ignore` (X-PyTRS-Ignore: kept without a ticket)."
    )
    queue: str | None = Field(description="The queue of the new or followed-up ticket.")
    ticket: str | None = Field(description="The number of the ticket followed up.")
    followup_via: str | None = Field(description="How the ticket was found.")
    new_state: str | None = Field(description="The state a follow-up sets.")
    internal: bool = Field(description="Stored as an internal article, flagged for review.")
    reasons: list[str] = Field(description="Why, one line per step of the decision.")
    agent: str | None = Field(description="How mail from an agent's address authenticated.")
    lines: list[str] = Field(description="The decision as `pytrs filters test` prints it.")


class FilterTestResult(BaseModel):
    rules: list[RuleVerdict] = Field(description="Every rule, in run order.")
    control: dict[str, str] = Field(description="Control headers in force after the rules.")
    routing: RoutingOutcome
    warnings: list[str] = Field(description="Set values checked only when a mail matches.")
    unknown: list[str] = Field(description="What a dry run cannot know.")


@api.post(
    "/filters/test",
    access="admin",
    body=FilterTest,
    response=FilterTestResult,
    multipart=True,
    max_body=MAX_BODY,
    summary="Dry-run the rules and routing on a raw mail",
)
async def test_filters(ctx: Context, body: FilterTest) -> FilterTestResult:
    """Parse the mail as the worker does, run the rules (each one's verdict and why) and the
    routing, reading the database and changing nothing. Give the mail as `mail`, `mail_base64`
    or, in a multipart request, a file part named `attachments`: exactly one of them."""
    raw = _raw(ctx, body)
    rules = await load_rules(ctx.db)
    if body.rule is not None:
        rules = with_rule(rules, body.rule.name, body.rule.rule(body.rule.name))
    problems, warnings = await check_rules(ctx.db, rules)
    if problems:
        raise refused(problems, body.rule.name if body.rule else None, within="rule.")
    run = await dry_run(
        ctx.config, ctx.db, raw, trusted=body.trusted, recipient=body.recipient, rules=rules
    )
    return FilterTestResult(
        rules=[_verdict(v) for v in run.rules.verdicts],
        control=dict(run.control),
        routing=_routing(run),
        warnings=[str(w) for w in warnings],
        unknown=list(UNKNOWN),
    )


def _raw(ctx: Context, body: FilterTest) -> bytes:
    """The one mail given; 422 `invalid-mail` for none, two, bad base64, an empty one, or one
    over the bench's limit."""
    given = [body.mail is not None, body.mail_base64 is not None, bool(ctx.files)]
    if sum(given) != 1:
        raise field_problem("mail", "give the mail once: as mail, mail_base64 or a file part", MAIL)
    if body.mail is not None:
        raw = body.mail.encode("utf-8", "surrogateescape")
    elif body.mail_base64 is not None:
        try:
            raw = base64.b64decode(body.mail_base64, validate=True)
        except (binascii.Error, ValueError):
            raise field_problem("mail_base64", "not valid base64", MAIL) from None
    else:
        raw = ctx.files[0].content
    if not raw.strip():
        raise field_problem("mail", "the mail is empty; give a whole raw mail", MAIL)
    if len(raw) > BenchInput.MAX_BYTES:
        raise field_problem("mail", f"the mail is larger than {MAX_MIB} MiB", MAIL)
    return raw


def _verdict(v: Verdict) -> RuleVerdict:
    return RuleVerdict(
        rule=v.rule,
        outcome=v.outcome,
        why=v.why,
        matched=[HeaderValue(header=h, value=t) for h, t in v.matched],
        set=[HeaderValue(header=h, value=t) for h, t in v.written],
    )


def _routing(run: DryRun) -> RoutingOutcome:
    d = run.decision
    agent = run.agent.detail if run.agent is not None else None
    lines = describe_routing(run)
    if run.ignored or d is None:
        return RoutingOutcome(
            action="ignore",
            queue=None,
            ticket=None,
            followup_via=None,
            new_state=None,
            internal=False,
            reasons=[],
            agent=agent,
            lines=lines,
        )
    return RoutingOutcome(
        action=d.action.value,
        queue=d.queue,
        ticket=d.ticket.tn if d.ticket else None,
        followup_via=d.followup_via or None,
        new_state=d.new_state or None,
        internal=d.internal,
        reasons=list(d.reasons),
        agent=agent,
        lines=lines,
    )
