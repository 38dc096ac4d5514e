"""Admin pages of the postmaster filter rules: the list in run order, create, edit, delete.

Place in the flow: an administrator changes the rules here instead of `pytrs filters import`,
and through the same door: `postmaster.filter_rules.save_rules` checks the whole rule set as an
import does (RE2 with the same limits, header names, set keys among the control headers, set
values against the names the database knows) and stores it only when nothing is wrong, as
Znuny's `postmaster_filter` rows, raising the filters' change generation so that running
workers reload. A refused rule comes back in its form, as typed, with one line per problem.
The form can also run the test bench (`filter_bench`) with the rule as typed, before saving.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pytrs.postmaster.control import CONTROL_HEADERS
from pytrs.postmaster.filter_rules import save_rules
from pytrs.postmaster.filters import MatchRow, Problem, Rule, SetRow
from pytrs.schema.filter_repo import RulesChanged, generation, load_rules
from pytrs.web.access import WebUser, admin_page
from pytrs.web.admin.filter_bench import BenchInput, run_bench
from pytrs.web.pages import flash, redirect, render

LIST_URL = "/admin/filters"
MAX_ROWS = 100  # rows of each kind read from one form: far more than any real rule has
BLANK_ROWS = 2  # empty rows offered for adding conditions and actions
# Headers rules commonly match on, offered as suggestions (any header name is allowed).
COMMON_HEADERS = ("From", "To", "Cc", "Subject", "Reply-To", "Body", "Message-ID", "List-Id")
STALE = (
    "Someone else changed the filter rules since this form was opened; nothing was saved. "
    "Check the rule list, then save again to store this version."
)


@dataclass(frozen=True, slots=True)
class RuleForm:
    """A rule as its form holds it: what the admin typed, blank rows left out."""

    original: str  # the stored rule's name when editing, "" for a new rule
    name: str
    stop: bool
    match: tuple[MatchRow, ...]
    set: tuple[SetRow, ...]
    # The filters' generation when the form was filled: a save refuses when someone else
    # saved rules since (None: no check).
    seen: int | None = None

    @classmethod
    def of(cls, rule: Rule, seen: int) -> RuleForm:
        return cls(rule.name, rule.name, rule.stop, rule.match, rule.set, seen)

    @classmethod
    def read(cls, form: FormData) -> RuleForm:
        """The rule in a submitted form (field names as `rule_form.html` writes them)."""
        match, sets = [], []
        for i in range(MAX_ROWS):
            header, value = _text(form, f"match-{i}-header"), _text(form, f"match-{i}-value")
            if header.strip() or value:
                match.append(MatchRow(header.strip(), value, form.get(f"match-{i}-not") == "on"))
            header, value = _text(form, f"set-{i}-header"), _text(form, f"set-{i}-value")
            if header.strip() or value:
                sets.append(SetRow(header.strip(), value))
        seen = _text(form, "seen")
        return cls(
            original=_text(form, "original"),
            name=_text(form, "name").strip(),
            stop=form.get("stop") == "on",
            match=tuple(match),
            set=tuple(sets),
            seen=int(seen) if seen.isdigit() else None,
        )

    def rule(self) -> Rule:
        return Rule(self.name, self.match, self.set, self.stop)

    def rows(self) -> dict[str, list[tuple[str, str, bool]]]:
        """Rows to show: the typed ones (indexes as problems name them) and blank ones."""
        blank = [("", "", False)] * BLANK_ROWS
        return {
            "match": [(m.header, m.value, m.negate) for m in self.match] + blank,
            "set": [(s.header, s.value, False) for s in self.set] + blank,
        }


def _text(form: FormData, key: str) -> str:
    value = form.get(key, "")
    return value if isinstance(value, str) else ""


def with_rule(rules: Sequence[Rule], original: str, rule: Rule | None) -> list[Rule]:
    """`rules` with the one named `original` replaced by `rule` (added when new, removed when
    `rule` is None)."""
    kept = [r for r in rules if not original or r.name != original]
    return kept if rule is None else [*kept, rule]


def in_run_order(rules: Sequence[Rule]) -> list[Rule]:
    """Rules as the postmaster runs them: by name (`CompiledRules` sorts the same way)."""
    return sorted(rules, key=lambda r: r.name)


@admin_page
async def filter_list(request: Request, user: WebUser) -> Response:
    rules = in_run_order(await load_rules(request.app.state.db))
    return render(request, "admin/filters.html", {"rules": rules})


@admin_page
async def filter_new(request: Request, user: WebUser) -> Response:
    if request.method == "GET":
        seen = await generation(request.app.state.db)
        return _form_page(request, RuleForm("", "", False, (), (), seen))
    return await _submitted(request)


@admin_page
async def filter_edit(request: Request, user: WebUser) -> Response:
    if request.method == "POST":
        return await _submitted(request)
    name = request.query_params.get("name", "")
    seen = await generation(request.app.state.db)  # before the rules: a change in between shows
    rule = next((r for r in await load_rules(request.app.state.db) if r.name == name), None)
    if rule is None:
        raise HTTPException(404, f"There is no filter rule named {name!r}.")
    return _form_page(request, RuleForm.of(rule, seen))


@admin_page
async def filter_delete(request: Request, user: WebUser) -> Response:
    form = await request.form()
    name = _text(form, "name")
    db = request.app.state.db
    seen = await generation(db)
    stored = await load_rules(db)
    if not any(r.name == name for r in stored):
        flash(request, f"There is no filter rule named {name!r}.", "error")
        return redirect(LIST_URL)
    try:
        problems, _ = await save_rules(db, with_rule(stored, name, None), expected=seen)
        failure = str(problems[0]) if problems else ""
    except RulesChanged:
        failure = STALE
    if failure:
        flash(request, f"Rule {name} not deleted: {failure}", "error")
    else:
        flash(request, f"Rule {name} deleted.")
    return redirect(LIST_URL)


async def _submitted(request: Request) -> Response:
    """Save the submitted rule, or (the "test" button) run the bench with it, unsaved."""
    # Leaving the block closes an uploaded file's spool.
    async with request.form(max_files=1, max_part_size=BenchInput.MAX_BYTES) as form:
        typed = RuleForm.read(form)
        testing = form.get("action") == "test"
        bench = await BenchInput.read(form) if testing else None
    db = request.app.state.db
    now = await generation(db)
    rules = with_rule(await load_rules(db), typed.original, typed.rule())
    if bench is not None:
        result = await run_bench(request.app.state.config, db, bench, rules=rules)
        return _form_page(request, typed, bench=bench, result=result)
    try:
        if typed.seen is not None and typed.seen != now:
            raise RulesChanged(f"generation {typed.seen} → {now}")
        problems, warnings = await save_rules(db, rules, expected=now)
    except RulesChanged:
        # Saving again (the form now carries the current generation) keeps this version.
        again = dataclasses.replace(typed, seen=await generation(db))
        return _form_page(request, again, problems=[STALE], status_code=409)
    if problems:
        return _form_page(request, typed, problems=problems, status_code=400)
    for warning in warnings:
        flash(request, f"Warning: {warning}")
    flash(request, f"Rule {typed.name} saved.")
    return redirect(LIST_URL)


def _form_page(
    request: Request,
    typed: RuleForm,
    *,
    problems: Sequence[Problem | str] = (),
    status_code: int = 200,
    **bench: object,
) -> Response:
    context = {
        "form": typed,
        "rows": typed.rows(),
        "problems": [str(p) for p in problems],
        "control_headers": CONTROL_HEADERS,
        "common_headers": COMMON_HEADERS,
        **bench,
    }
    return render(request, "admin/filters_form.html", context, status_code=status_code)


routes: list[BaseRoute] = [
    Route(LIST_URL, filter_list, name="admin_filters"),
    Route(LIST_URL + "/new", filter_new, methods=["GET", "POST"], name="admin_filter_new"),
    Route(LIST_URL + "/edit", filter_edit, methods=["GET", "POST"], name="admin_filter_edit"),
    Route(LIST_URL + "/delete", filter_delete, methods=["POST"], name="admin_filter_delete"),
]
