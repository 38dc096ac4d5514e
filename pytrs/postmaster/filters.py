"""Postmaster filter rules: Znuny's `postmaster_filter` semantics on RE2 (pure).

Runs in the postmaster between parsing and routing: the worker hands over a parsed mail's headers
and body, the rules write control headers (`X-PyTRS-*`, see `control`), and routing reads them.
Rules are compiled once when they are loaded or imported (`CompiledRules.compile`), so a pattern
RE2 cannot express is refused there, naming the rule and field, and never surfaces at mail time.

Semantics follow REFERENCE §3.1: rules run in name order; a rule matches when all its match rows
hold (a missing header fails its row, negated or not); regexes are case-insensitive and
unanchored; `EMAILADDRESS:<regex>` compares each address of the header to `^<regex>$`; set rows
substitute `[***]` and `[**\\name**]`; a matching rule with `stop` ends the run.

Work per mail is bounded: each regex sees at most the first `MAX_SUBJECT_CHARS` characters of a
value (1 MiB), and RE2 matches in time linear in that, whatever the pattern. With hundreds of
rules the cost is in calling RE2 once per row, so the worker's path (`explain=False`) first
searches each header once with an RE2 Set of all its rows (`_Prefilter`) and runs in full only
the rules that can still match; the result is the same as running every rule.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import Any, ClassVar

import re2

from pytrs.postmaster.control import canonical
from pytrs.vocabulary.filter_rules import MatchRow, Rule, SetRow

# The rule records come from the ground floor (the database stores them too); they are part of
# this module's interface, as the rules it compiles.
__all__ = [
    "BODY",
    "EMAIL_PREFIX",
    "FIRST_GROUP",
    "MAX_SUBJECT_CHARS",
    "CompiledRules",
    "FilterResult",
    "MatchRow",
    "Problem",
    "Rule",
    "RuleError",
    "RuleHit",
    "SetRow",
    "Verdict",
    "has_placeholder",
]

# Regexes see at most this many characters of a header value or body. With RE2's linear time
# this bounds one rule row to a few milliseconds even on a hostile multi-megabyte body.
MAX_SUBJECT_CHARS = 1024 * 1024

BODY = "Body"
EMAIL_PREFIX = "EMAILADDRESS:"
FIRST_GROUP = "[***]"

# Znuny (Perl) spells named groups `(?<name>…)`; RE2's documented form is `(?P<name>…)`. Only an
# unescaped `(` is rewritten, so a literal `\(?<x>` keeps its meaning; `(?<=`/`(?<!` do not match
# the name pattern and are left for RE2 to reject as lookbehind.
_PERL_NAMED_GROUP = re.compile(r"(?<!\\)((?:\\\\)*)\(\?<([A-Za-z_][A-Za-z0-9_]*)>")
_NAMED_PLACEHOLDER = re.compile(r"\[\*\*\\([A-Za-z_][A-Za-z0-9_]*)\*\*\]")


def has_placeholder(template: str) -> bool:
    """Whether a set value takes text from the mail (`[***]`, `[**\\name**]`) when it matches."""
    return FIRST_GROUP in template or _NAMED_PLACEHOLDER.search(template) is not None


# How much of a matched text (or, for a negated row, of the compared value) the trace keeps:
# enough to recognise it, without copying a megabyte body into every routing trace.
_TRACE_CHARS = 200
# How much of a value that failed a row an explanation shows: enough to see why.
_SHOWN_CHARS = 80


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a rule is invalid, addressed by rule name and field (`match[0].value`)."""

    rule: str
    field: str
    why: str

    def __str__(self) -> str:
        return f"rule {self.rule}: {self.field}: {self.why}"


class RuleError(ValueError):
    """One or more invalid rules; `problems` lists every one, `rule`/`field` name the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("RuleError needs at least one problem")
        self.problems = tuple(problems)
        self.rule = self.problems[0].rule
        self.field = self.problems[0].field
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that matched, with (header, matched text) per match row, for the routing trace."""

    rule: str
    matched: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one rule did with a mail and why, for `pytrs filters test` and the web's bench.

    `outcome` is MATCHED (with the text each match row matched and what the rule set),
    NOT_MATCHED (with the row that failed and the value it saw) or NOT_RUN (a rule before it
    said stop; `why` names that rule).
    """

    rule: str
    outcome: str
    why: str = ""
    matched: tuple[tuple[str, str], ...] = ()
    written: tuple[tuple[str, str], ...] = ()

    MATCHED: ClassVar[str] = "matched"
    NOT_MATCHED: ClassVar[str] = "not matched"
    NOT_RUN: ClassVar[str] = "not run"

    def __str__(self) -> str:
        if self.outcome == Verdict.MATCHED:
            matched = "; ".join(f"{h} {t!r}" for h, t in self.matched)
            written = ", ".join(f"{h}={v!r}" for h, v in self.written) or "nothing"
            return f"{self.rule}: matched ({matched}); set {written}"
        if self.outcome == Verdict.NOT_RUN:
            return f"{self.rule}: not run ({self.why})"
        return f"{self.rule}: not matched: {self.why}"


@dataclass(frozen=True, slots=True)
class FilterResult:
    """What the rules made of one mail."""

    control: dict[str, str]  # canonical X-PyTRS-* name → value; later rules overwrite
    hits: tuple[RuleHit, ...]
    verdicts: tuple[Verdict, ...]  # one per rule when explained, in run order

    @property
    def explanations(self) -> tuple[str, ...]:
        """One line per rule, as `pytrs filters test` prints them."""
        return tuple(str(v) for v in self.verdicts)


@dataclass(frozen=True, slots=True)
class _Row:
    header: str
    key: str  # lookup key: canonical control name, or the lower-cased header name
    control: str | None  # canonical name when the row reads a control header
    pattern: str  # as written, for the trace and for `[***]` of an EMAILADDRESS row
    source: str  # what RE2 compiled (grouped, `(?P<name>`), for the prefilter's Set
    regex: Any  # re2._Regexp; the module ships no type information
    negate: bool
    email: bool


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    rows: tuple[_Row, ...]
    sets: tuple[tuple[str, str], ...]  # (canonical header, value template)
    stop: bool


def _re2_options() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    # Errors are reported as RuleErrors; RE2's own stderr logging would only duplicate them.
    options.log_errors = False
    return options


_OPTIONS = _re2_options()


def _re2_source(pattern: str) -> str:
    """The pattern in RE2's spelling of named groups."""
    return _PERL_NAMED_GROUP.sub(r"\1(?P<\2>", pattern)


def _compile_regex(pattern: str) -> Any:
    """Compile with RE2, case-insensitive; raises ValueError with RE2's reason."""
    try:
        return re2.compile(_re2_source(pattern), _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(f"not a valid RE2 pattern ({reason})") from None


def _compile_row(row: MatchRow, problems: list[Problem], rule: str, field: str) -> _Row | None:
    header = row.header.strip()
    if not header or ":" in header or any(c.isspace() for c in header):
        problems.append(Problem(rule, f"{field}.header", f"not a header name: {row.header!r}"))
        return None
    email = row.value.startswith(EMAIL_PREFIX)
    pattern = row.value[len(EMAIL_PREFIX) :] if email else row.value
    # Grouping keeps `^a|b$` from splitting into `^a` or `b$` (Znuny pastes it in bare).
    grouped = f"(?:{pattern})" if email else pattern
    try:
        regex = _compile_regex(grouped)
    except ValueError as exc:
        problems.append(Problem(rule, f"{field}.value", str(exc)))
        return None
    control = canonical(header)
    key = control or (BODY if header.lower() == BODY.lower() else header.lower())
    return _Row(header, key, control, pattern, _re2_source(grouped), regex, row.negate, email)


def _compile_rule(rule: Rule, problems: list[Problem]) -> _Rule:
    name = rule.name
    if not rule.match:
        # Znuny's rule never matches without a condition; saying so beats a silent dead rule.
        problems.append(Problem(name, "match", "a rule needs at least one match row"))
    rows = [_compile_row(r, problems, name, f"match[{i}]") for i, r in enumerate(rule.match)]
    sets: list[tuple[str, str]] = []
    for i, row in enumerate(rule.set):
        header = canonical(row.header)
        if header is None:
            why = f"not a control header (X-PyTRS-* or X-OTRS-*): {row.header!r}"
            problems.append(Problem(name, f"set[{i}].header", why))
        else:
            sets.append((header, row.value))
    return _Rule(name, tuple(r for r in rows if r is not None), tuple(sets), rule.stop)


class CompiledRules:
    """A validated, compiled rule set: compile once at load time, apply to every mail."""

    __slots__ = ("_prefilter", "_rules")

    def __init__(self, rules: tuple[_Rule, ...]) -> None:
        self._rules = rules
        self._prefilter = _Prefilter(rules)

    @classmethod
    def compile(cls, rules: Sequence[Rule]) -> CompiledRules:
        """Validate and compile every rule; raises RuleError listing all problems found."""
        problems: list[Problem] = []
        seen: set[str] = set()
        for rule in rules:
            if not rule.name.strip():
                problems.append(Problem(repr(rule.name), "name", "a rule needs a name"))
            elif rule.name in seen:
                problems.append(Problem(rule.name, "name", "duplicate rule name"))
            seen.add(rule.name)
        compiled = [_compile_rule(rule, problems) for rule in rules]
        if problems:
            raise RuleError(problems)
        return cls(tuple(sorted(compiled, key=lambda r: r.name)))

    def __len__(self) -> int:
        return len(self._rules)

    def apply(
        self, headers: Sequence[tuple[str, str]], body: str, *, explain: bool = True
    ) -> FilterResult:
        """Run the rules in name order over one mail's decoded headers and body.

        `explain=False` (the worker) writes no explanations and runs only the rules the
        prefilter leaves (same control headers and hits); `explain=True` runs every rule and
        says why each did or did not match.
        """
        values = _index(headers, body)
        rules = self._rules
        if not explain:
            picked = self._prefilter.candidates(values)
            if picked is not None:
                rules = tuple(rules[i] for i in picked)
        return _run_rules(rules, values, explain)


def _run_rules(rules: Sequence[_Rule], values: dict[str, str], explain: bool) -> FilterResult:
    """Run `rules` in order over one mail's values, until a matching rule says stop."""
    control: dict[str, str] = {}
    hits: list[RuleHit] = []
    verdicts: list[Verdict] = []
    stopped_by = ""
    for rule in rules:
        if stopped_by:
            if not explain:
                break
            verdicts.append(Verdict(rule.name, Verdict.NOT_RUN, f"stopped after {stopped_by}"))
            continue
        outcome = _run_rule(rule, values, control, explain)
        if isinstance(outcome, str):
            if explain:
                verdicts.append(Verdict(rule.name, Verdict.NOT_MATCHED, outcome))
            continue
        hits.append(outcome)
        if explain:
            written = tuple((h, control[h]) for h, _ in rule.sets)
            verdicts.append(Verdict(rule.name, Verdict.MATCHED, "", outcome.matched, written))
        if rule.stop:
            stopped_by = rule.name
    return FilterResult(control, tuple(hits), tuple(verdicts))


# Ends every Set: it matches only where a value ends (and, in the anchored Set of addresses,
# any address), so a Set reports it exactly when RE2 scanned the whole value. The binding drops
# RE2's error result, and a DFA that runs out of memory on a hostile value would otherwise read
# as "no row matches".
_SCANNED = {False: r"\z", True: r"(?s:.*)"}


class _Screen:
    """The rows of one header in one RE2 Set: one pass over the value tells which rows match
    (EMAILADDRESS rows: one pass per address, anchored at both ends)."""

    __slots__ = ("_sentinel", "_set", "email", "key", "negated", "owners")

    def __init__(self, key: str, email: bool, rows: Sequence[tuple[int, _Row]]) -> None:
        """Raises re2.error when RE2 cannot build the Set (program too large)."""
        self.key = key
        self.email = email
        self.owners = tuple((index, row.negate) for index, row in rows)  # Set index → rule
        self.negated = frozenset(index for index, row in rows if row.negate)
        self._set = re2.Set.FullMatchSet(_OPTIONS) if email else re2.Set.SearchSet(_OPTIONS)
        for _, row in rows:
            self._set.Add(row.source)
        self._sentinel = self._set.Add(_SCANNED[email])
        self._set.Compile()

    def matching(self, value: str) -> set[int] | None:
        """Indexes into `owners` of the rows whose regex matches `value` (for an EMAILADDRESS
        row: some address of it), or None when RE2 could not decide."""
        value = value[:MAX_SUBJECT_CHARS]
        texts = _addresses(value) if self.email else (value,)
        found: set[int] = set()
        try:
            for text in texts:
                got = self._set.Match(text)
                if got is None or self._sentinel not in got:
                    return None
                found.update(got)
        except UnicodeEncodeError:
            # A lone surrogate: leave it to the full run, which fails on it as it always did.
            return None
        found.discard(self._sentinel)
        return found


class _Prefilter:
    """Which rules can still match a mail, from one Set pass per header instead of one regex
    call per row. A rule is left out only when one of its rows is sure to fail: a plain row
    whose regex does not match or whose header is missing, a negated row whose regex matches or
    whose header is missing. The rules left run in full (captures, matched text, stop), so the
    result is the same as running every rule. Rows on control headers are not screened: an
    earlier rule may set the value they see."""

    __slots__ = ("_always", "_need", "_screens")

    def __init__(self, rules: Sequence[_Rule]) -> None:
        groups: dict[tuple[str, bool], list[tuple[int, _Row]]] = {}
        for index, rule in enumerate(rules):
            for row in rule.rows:
                if row.control is None:
                    groups.setdefault((row.key, row.email), []).append((index, row))
        screens: list[_Screen] = []
        need = [0] * len(rules)  # screened plain rows per rule: all of them must match
        for (key, email), rows in groups.items():
            try:
                screens.append(_Screen(key, email, rows))
            except re2.error:
                continue  # too large for one Set: these rows are simply not screened
            for index, row in rows:
                need[index] += not row.negate
        self._screens = tuple(screens)
        self._need = tuple(need)
        self._always = frozenset(i for i, n in enumerate(need) if n == 0)

    def candidates(self, values: dict[str, str]) -> list[int] | None:
        """Indexes of the rules that can match, in order; None when a Set could not decide."""
        counts: dict[int, int] = {}
        failed: set[int] = set()
        for screen in self._screens:
            value = values.get(screen.key)
            if value is None:
                failed.update(screen.negated)
                continue
            found = screen.matching(value)
            if found is None:
                return None
            for i in found:
                index, negate = screen.owners[i]
                if negate:
                    failed.add(index)
                else:
                    counts[index] = counts.get(index, 0) + 1
        need = self._need
        picked = self._always.union(i for i, n in counts.items() if n == need[i])
        return sorted(picked - failed)


def _index(headers: Sequence[tuple[str, str]], body: str) -> dict[str, str]:
    """First value per header (control headers under their canonical name), plus the body."""
    values: dict[str, str] = {BODY: body}
    for name, value in headers:
        key = canonical(name) or name.lower()
        # Znuny's params hold one value per header, the first occurrence.
        values.setdefault(key, value)
    return values


@dataclass(slots=True)
class _Captures:
    first: str = ""  # last non-empty group 1 across the rule's rows
    named: dict[str, str] = field(default_factory=dict)  # later rows overwrite earlier ones


def _run_rule(
    rule: _Rule, values: dict[str, str], control: dict[str, str], explain: bool = True
) -> RuleHit | str:
    """Apply one rule; returns its hit (control updated) or why it did not match."""
    captures = _Captures()
    matched: list[tuple[str, str]] = []
    for row in rule.rows:
        # Rules see what earlier rules set, as Znuny's filters share one params hash.
        value = control.get(row.control) if row.control else None
        if value is None:
            value = values.get(row.key)
        if value is None:
            return f"{row.header}: header missing" if explain else ""
        text = _check_row(row, value[:MAX_SUBJECT_CHARS], captures)
        if text is None:
            if not explain:
                return ""
            verb = "matches" if row.negate else "does not match"
            return f"{row.header} {value[:_SHOWN_CHARS]!r} {verb} {_shown(row)}"
        matched.append((row.header, text))
    named = captures.named
    for header, template in rule.sets:
        result = template.replace(FIRST_GROUP, captures.first, 1)
        control[header] = _NAMED_PLACEHOLDER.sub(lambda m: named.get(m[1], m[0]), result)
    return RuleHit(rule.name, tuple(matched))


def _shown(row: _Row) -> str:
    return f"{EMAIL_PREFIX}{row.pattern}" if row.email else f"/{row.pattern}/"


def _check_row(row: _Row, value: str, captures: _Captures) -> str | None:
    """The matched text when the row holds (negation applied), else None; records captures."""
    if row.email:
        return _check_addresses(row, value, captures)
    found = row.regex.search(value)
    if row.negate:
        return None if found else value[:_TRACE_CHARS]
    if found is None:
        return None
    if row.regex.groups >= 1 and found.group(1):
        captures.first = found.group(1)
    captures.named.update({k: v for k, v in found.groupdict().items() if v is not None})
    return str(found.group(0))[:_TRACE_CHARS]


@functools.lru_cache(maxsize=256)
def _addresses(value: str) -> tuple[str, ...]:
    """Bare addresses of a header value. Many EMAILADDRESS rows test the same From or To of
    one mail; parsing it once instead of once per row keeps 200 rules cheap."""
    return tuple(addr for _, addr in getaddresses([value]) if addr)


def _check_addresses(row: _Row, value: str, captures: _Captures) -> str | None:
    """EMAILADDRESS: any bare address equal to `^pattern$`; negation inverts the whole header."""
    hit = next((addr for addr in _addresses(value) if row.regex.fullmatch(addr)), None)
    if row.negate:
        return None if hit else value[:_TRACE_CHARS]
    if hit is None:
        return None
    # Znuny hands the pattern itself (not the address found) to `[***]` and `[**\email**]`.
    if row.pattern:
        captures.first = row.pattern
        captures.named["email"] = row.pattern
    return hit
