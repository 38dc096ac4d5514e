"""`/api/v1/filters`: the postmaster filter rules — list, show, create, replace, delete (admin).

Place in the flow: the API's door to the rules the admin pages (`web/admin/filters.py`) and
`pytrs filters import` change, through the same check: `postmaster.filter_rules.save_rules`
validates the whole rule set as it will be stored (RE2 with the worker's limits, header names,
set keys among the control headers, set values against the names the database knows) and
stores it only when nothing is wrong, raising the filters' change generation so that running
workers reload. A refused rule is answered 422 `invalid-rule` with one error per wrong row,
named by its place in the body (`match.0.value`). Rules run in name order, so the list comes
in that order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from pytrs.postmaster.control import CONTROL_HEADERS, PREFIX
from pytrs.postmaster.filter_rules import save_rules
from pytrs.postmaster.filters import MatchRow, Rule, SetRow
from pytrs.postmaster.filters import Problem as RuleProblem
from pytrs.schema import storable
from pytrs.schema.filter_repo import RulesChanged, generation, load_rules
from pytrs.schema.tables import postmaster_filter
from pytrs.web.admin.filters import in_run_order, with_rule
from pytrs.web.api.operations import Context, Operations
from pytrs.web.api.problems import Problem
from pytrs.web.api.resources.admin_support import body_problem

DESCRIBED = "Postmaster filter rules and their test bench (administrators only)."
api = Operations(tag="filters", description=DESCRIBED)

MAX_ROWS = 100  # rows of each kind in one rule: far more than any real rule has
NAME_CHARS = storable.column_limit(postmaster_filter.c.f_name) or 200
HEADER_CHARS = storable.column_limit(postmaster_filter.c.f_key) or 200
# What compiling a rule requires of header names, said in the JSON Schema too.
HEADER_NAME: JsonDict = {"pattern": r"^[^:\s]+$"}
_SUFFIXES = "|".join(h.removeprefix(PREFIX) for h in CONTROL_HEADERS)  # letters, digits, "-"
CONTROL_HEADER: JsonDict = {
    "pattern": rf"^X-(PyTRS|OTRS)-({_SUFFIXES}|(FollowUp-)?DynamicField-[A-Za-z0-9]+)$"
}
STALE = (
    "Someone else changed the filter rules while this one was being saved; nothing was saved. "
    "Read the rules again, then send the change again."
)


class MatchCondition(BaseModel):
    """A condition: the header's value must (or, negated, must not) match the regex."""

    model_config = ConfigDict(extra="forbid")

    header: str = Field(
        min_length=1,
        max_length=HEADER_CHARS,
        description='A header name ("From", "Subject", …), `Body` for the decoded body, or a '
        "control header (X-PyTRS-*).",
        examples=["From"],
        json_schema_extra=HEADER_NAME,
    )
    value: str = Field(
        description="An RE2 regex, case-insensitive and unanchored; `EMAILADDRESS:<regex>` "
        "compares each address of the header with the whole regex.",
        examples=[r"EMAILADDRESS:.*@vip\.example\.org"],
    )
    negate: bool = Field(False, description="True: the row holds when the regex does not match.")


class SetAction(BaseModel):
    """An action: write the value (after `[***]` / `[**\\name**]` substitution) into a
    control header."""

    model_config = ConfigDict(extra="forbid")

    header: str = Field(
        min_length=1,
        max_length=HEADER_CHARS,
        description="A control header: X-PyTRS-* (or its X-OTRS-* alias, stored as X-PyTRS-*; "
        "any case).",
        examples=["X-PyTRS-Queue"],
        json_schema_extra=CONTROL_HEADER,
    )
    value: str = Field(description="The value to set; `[***]` is the first regex group.")


class FilterRuleBody(BaseModel):
    """A rule's conditions and actions (its name is in the path)."""

    model_config = ConfigDict(extra="forbid")

    stop: bool = Field(False, description="When this rule matches, later rules do not run.")
    match: list[MatchCondition] = Field(
        max_length=MAX_ROWS,
        description="Conditions, all of which must hold (at least one).",
        json_schema_extra={"minItems": 1},
    )
    set: list[SetAction] = Field(
        default_factory=list, max_length=MAX_ROWS, description="Actions applied on a match."
    )

    def rule(self, name: str) -> Rule:
        return Rule(
            name=name,
            match=tuple(MatchRow(m.header.strip(), m.value, m.negate) for m in self.match),
            set=tuple(SetRow(s.header.strip(), s.value) for s in self.set),
            stop=self.stop,
        )


class FilterRuleIn(FilterRuleBody):
    """A new rule."""

    name: str = Field(
        min_length=1,
        max_length=NAME_CHARS,
        pattern=r"^[^/\s]([^/]*[^/\s])?$",
        description="Unique; rules run in name order, so a numeric prefix orders them. No "
        "slash, no space at either end.",
        examples=["010-vip"],
    )


class FilterRule(BaseModel):
    """A stored rule."""

    name: str = Field(description="Unique; rules run in name order.")
    stop: bool = Field(description="When this rule matches, later rules do not run.")
    match: list[MatchCondition] = Field(description="Conditions, all of which must hold.")
    set: list[SetAction] = Field(description="Actions applied on a match.")

    @classmethod
    def of(cls, rule: Rule) -> FilterRule:
        return cls(
            name=rule.name,
            stop=rule.stop,
            match=[
                MatchCondition(header=m.header, value=m.value, negate=m.negate) for m in rule.match
            ],
            set=[SetAction(header=s.header, value=s.value) for s in rule.set],
        )


class FilterSaved(FilterRule):
    """The rule as stored, and what could not be checked before a mail matches."""

    warnings: list[str] = Field(
        description="Set values taken from the mail (placeholders), checked only when a mail "
        "matches."
    )


@api.get("/filters", access="admin", response=list[FilterRule], summary="The rules, in run order")
async def list_filters(ctx: Context) -> list[FilterRule]:
    """Every rule in the order the postmaster runs them (by name). Not paged: a rule set is
    replaced as a whole and is read whole by every worker."""
    return [FilterRule.of(r) for r in in_run_order(await load_rules(ctx.db))]


@api.get("/filters/{name}", access="admin", response=FilterRule, summary="One rule")
async def get_filter(ctx: Context, name: str) -> FilterRule:
    return FilterRule.of(_named(await load_rules(ctx.db), name))


@api.post(
    "/filters",
    access="admin",
    body=FilterRuleIn,
    response=FilterSaved,
    status=201,
    problems=("conflict",),
    summary="Add a rule",
)
async def create_filter(ctx: Context, body: FilterRuleIn) -> FilterSaved:
    """Add a rule; the name must be free (409). Refused with 422 naming each wrong row."""
    seen = await generation(ctx.db)
    stored = await load_rules(ctx.db)
    if any(r.name == body.name for r in stored):
        raise Problem(
            409,
            "conflict",
            f"A filter rule named {body.name!r} exists; replace it with "
            f"PUT /filters/{{name}} or choose another name.",
        )
    return await _save(ctx, with_rule(stored, "", body.rule(body.name)), body.name, seen)


@api.put(
    "/filters/{name}",
    access="admin",
    body=FilterRuleBody,
    response=FilterSaved,
    problems=("conflict",),
    summary="Replace a rule",
)
async def replace_filter(ctx: Context, name: str, body: FilterRuleBody) -> FilterSaved:
    """Replace the rule's conditions, actions and stop flag with the body's."""
    seen = await generation(ctx.db)
    stored = await load_rules(ctx.db)
    _named(stored, name)
    return await _save(ctx, with_rule(stored, name, body.rule(name)), name, seen)


@api.delete(
    "/filters/{name}",
    access="admin",
    response=None,
    status=204,
    problems=("conflict",),
    summary="Delete a rule",
)
async def delete_filter(ctx: Context, name: str) -> None:
    seen = await generation(ctx.db)
    stored = await load_rules(ctx.db)
    _named(stored, name)
    await _store(ctx, with_rule(stored, name, None), None, seen)


async def _save(ctx: Context, rules: list[Rule], name: str, seen: int) -> FilterSaved:
    """Store the set with rule `name` changed; that rule as stored (set headers under their
    X-PyTRS-* names) and the warnings."""
    warnings = await _store(ctx, rules, name, seen)
    rule = FilterRule.of(_named(await load_rules(ctx.db), name))
    return FilterSaved(**rule.model_dump(), warnings=warnings)


async def _store(ctx: Context, rules: list[Rule], name: str | None, seen: int) -> list[str]:
    """Store the whole set as the admin pages do (all or nothing); the warnings."""
    try:
        problems, warnings = await save_rules(ctx.db, rules, expected=seen)
    except RulesChanged:
        raise Problem(409, "conflict", STALE) from None
    if problems:
        raise refused(problems, name)
    return [str(w) for w in warnings]


def refused(problems: Sequence[RuleProblem], name: str | None, *, within: str = "") -> Problem:
    """422 `invalid-rule` with one error per wrong row: its place in the body
    (`match.0.value`, after `within`) for the rule sent; for another stored rule (a set is
    checked whole) the whole line, naming that rule."""
    errors = [
        {"field": within + _ROW_INDEX.sub(r".\1", p.field), "message": p.why}
        if p.rule == name
        else {"field": "", "message": str(p)}
        for p in problems
    ]
    return body_problem(errors, "invalid-rule")


_ROW_INDEX = re.compile(r"\[(\d+)\]")


def _named(rules: Sequence[Rule], name: str) -> Rule:
    found = next((r for r in rules if r.name == name), None)
    if found is None:
        raise Problem(404, "not-found", f"There is no filter rule named {name!r}.")
    return found
