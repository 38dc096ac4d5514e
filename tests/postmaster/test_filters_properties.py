"""Property tests of the postmaster filter rules (hypothesis): the worker's prefiltered run gives
exactly what a plain reference evaluation of REFERENCE §3.1 gives, and the single-row semantics
(negation, missing headers, EMAILADDRESS, case, order and stop) hold for any input."""

from __future__ import annotations

import re
from email.utils import getaddresses

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from pytrs.postmaster.control import canonical
from pytrs.postmaster.filters import (
    CompiledRules,
    FilterResult,
    MatchRow,
    Rule,
    RuleHit,
    SetRow,
)

# --- A reference evaluator: REFERENCE §3.1 written out row by row, no prefilter, no caches.

_OPTIONS = re2.Options()
_OPTIONS.case_sensitive = False
_OPTIONS.log_errors = False
_NAMED = re.compile(r"\[\*\*\\([A-Za-z_][A-Za-z0-9_]*)\*\*\]")
_LIMIT, _TRACE = 1024 * 1024, 200


def _key(header: str) -> tuple[str, bool]:
    """Where a row's value lives, and whether earlier rules may have written it."""
    control = canonical(header)
    if control:
        return control, True
    return ("Body" if header.lower() == "body" else header.lower()), False


def _fill(template: str, first: str, named: dict[str, str]) -> str:
    text = template.replace("[***]", first, 1)
    return _NAMED.sub(lambda m: named.get(m[1], m[0]), text)


def reference(
    rules: list[Rule], headers: tuple[tuple[str, str], ...], body: str
) -> tuple[dict[str, str], tuple[RuleHit, ...]]:
    params: dict[str, str] = {"Body": body}
    for name, value in headers:
        params.setdefault(canonical(name) or name.lower(), value)
    control: dict[str, str] = {}
    hits: list[RuleHit] = []
    for rule in sorted(rules, key=lambda r: r.name):
        first = ""
        named: dict[str, str] = {}
        matched: list[tuple[str, str]] = []
        for row in rule.match:
            key, is_control = _key(row.header)
            found_value = control.get(key) if is_control else None
            found_value = params.get(key) if found_value is None else found_value
            if found_value is None:
                break
            value = found_value[:_LIMIT]
            if row.value.startswith("EMAILADDRESS:"):
                pattern = row.value[len("EMAILADDRESS:") :]
                regex = re2.compile(f"(?:{pattern})".replace("(?<", "(?P<"), _OPTIONS)
                found = [a for _, a in getaddresses([value]) if a and regex.fullmatch(a)]
                if bool(found) is row.negate:
                    break
                if not row.negate and pattern:
                    first, named["email"] = pattern, pattern
                matched.append((row.header, value[:_TRACE] if row.negate else found[0]))
                continue
            regex = re2.compile(row.value.replace("(?<", "(?P<"), _OPTIONS)
            m = regex.search(value)
            if (m is None) is not row.negate:
                break
            if m is not None:
                if regex.groups and m.group(1):
                    first = m.group(1)
                named.update({k: v for k, v in m.groupdict().items() if v is not None})
            matched.append((row.header, value[:_TRACE] if row.negate else m.group(0)[:_TRACE]))
        else:
            for action in rule.set:
                control[str(canonical(action.header))] = _fill(action.value, first, named)
            hits.append(RuleHit(rule.name, tuple(matched)))
            if rule.stop:
                break
    return control, tuple(hits)


# --- Generators: a small alphabet, so that rows match often enough to be interesting.

_ATOMS = ["a", "b", "x", r"\.", "@", ".", "[ab]", "a+", "b*", "(a|b)", "(x)", "^", "$", "(?s:.)"]
_EMAIL_ATOMS = [".*", "a", "b", "@", r"x\.y", "[ab]+", "(a|b)", "A"]


@st.composite
def _pattern(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 3)) == 0:
        atoms = draw(st.lists(st.sampled_from(_EMAIL_ATOMS), min_size=1, max_size=4))
        return "EMAILADDRESS:" + "".join(atoms)
    atoms = draw(st.lists(st.sampled_from(_ATOMS), min_size=1, max_size=4))
    named = draw(st.sampled_from(["", "(?<n>[ab]+)", "(?P<m>x)", "(?<n>)"]))
    atoms.insert(draw(st.integers(0, len(atoms))), named)
    return "".join(atoms)


_ROW_HEADERS = ["Subject", "subject", "From", "To", "X-A", "Body", "X-Missing", "X-OTRS-Queue"]
_SETS = ["[***]", "q-[**\\n**]", "fixed", "[***] [**\\email**] [**\\m**]"]


@st.composite
def _rules(draw: st.DrawFn) -> list[Rule]:
    names = draw(st.lists(st.integers(0, 99), max_size=8, unique=True))
    rules = []
    for number in names:
        rows = draw(
            st.lists(
                st.builds(MatchRow, st.sampled_from(_ROW_HEADERS), _pattern(), st.booleans()),
                min_size=1,
                max_size=3,
            )
        )
        header = st.sampled_from(["X-PyTRS-Queue", "X-PyTRS-Title", "X-OTRS-Priority"])
        sets = draw(st.lists(st.builds(SetRow, header, st.sampled_from(_SETS)), max_size=2))
        rules.append(Rule(f"{number:02d}-r", tuple(rows), tuple(sets), draw(st.booleans())))
    return rules


_TEXT = st.text(alphabet="abxAB.@ ", max_size=12)
_ADDRESS = st.builds(
    lambda local, domain, name: f"{name} <{local}@{domain}>" if name else f"{local}@{domain}",
    st.sampled_from(["a", "ab", "b", "A", "ba"]),
    st.sampled_from(["x.y", "b", "X.Y", "a.b"]),
    st.sampled_from(["", "Ab", '"a@b"']),
)
_ADDRESSES = st.lists(_ADDRESS, min_size=0, max_size=3).map(", ".join)


@st.composite
def _mail(draw: st.DrawFn) -> tuple[tuple[tuple[str, str], ...], str]:
    candidates = [
        ("Subject", _TEXT),
        ("From", _ADDRESSES),
        ("To", _ADDRESSES),
        ("X-A", _TEXT),
        ("X-A", _TEXT),  # a repeated header: rows see its first value
        ("X-PyTRS-Queue", _TEXT),
    ]
    headers = tuple((name, draw(value)) for name, value in candidates if draw(st.booleans()))
    return headers, draw(_TEXT)


def _compile(rules: list[Rule]) -> CompiledRules:
    return CompiledRules.compile(rules)


# --- The prefiltered run is the reference evaluation.


@settings(max_examples=250, deadline=None)
@given(rules=_rules(), mail=_mail())
def test_prefiltered_run_equals_the_reference(
    rules: list[Rule], mail: tuple[tuple[tuple[str, str], ...], str]
) -> None:
    headers, body = mail
    compiled = _compile(rules)
    expected = reference(rules, headers, body)
    fast = compiled.apply(headers, body, explain=False)
    assert (fast.control, fast.hits) == expected
    assert fast.explanations == ()
    full = compiled.apply(headers, body, explain=True)
    assert (full.control, full.hits) == expected
    assert len(full.explanations) == len(rules)


@settings(max_examples=40, deadline=None)
@given(rules=_rules(), mails=st.lists(_mail(), min_size=2, max_size=6))
def test_one_compiled_rule_set_serves_many_mails(
    rules: list[Rule], mails: list[tuple[tuple[tuple[str, str], ...], str]]
) -> None:
    compiled = _compile(rules)
    for headers, body in mails:
        result = compiled.apply(headers, body, explain=False)
        assert (result.control, result.hits) == reference(rules, headers, body)


@settings(max_examples=100, deadline=None)
@given(
    first=_pattern(),
    second=_pattern(),
    negate=st.booleans(),
    written=st.text(alphabet="abx.@", max_size=5),
    mail=_mail(),
)
def test_later_rules_see_control_headers_earlier_rules_wrote(
    first: str,
    second: str,
    negate: bool,
    written: str,
    mail: tuple[tuple[tuple[str, str], ...], str],
) -> None:
    headers, body = mail
    rules = [
        Rule("1-writes", (MatchRow("Subject", first),), (SetRow("X-PyTRS-Queue", written),)),
        Rule(
            "2-reads", (MatchRow("X-OTRS-Queue", second, negate),), (SetRow("X-PyTRS-Title", "t"),)
        ),
    ]
    result = _compile(rules).apply(headers, body, explain=False)
    assert (result.control, result.hits) == reference(rules, headers, body)


# --- Single rows.


def _matches(row: MatchRow, headers: tuple[tuple[str, str], ...], body: str = "") -> bool:
    rules = _compile([Rule("r", (row,), (SetRow("X-PyTRS-Queue", "q"),))])
    fast = rules.apply(headers, body, explain=False)
    full = rules.apply(headers, body, explain=True)
    assert fast.hits == full.hits
    return bool(fast.hits)


@settings(max_examples=150, deadline=None)
@given(pattern=_pattern(), header=st.sampled_from(["Subject", "From", "To", "X-A"]), mail=_mail())
def test_negation_inverts_a_row_when_the_header_is_present(
    pattern: str, header: str, mail: tuple[tuple[tuple[str, str], ...], str]
) -> None:
    headers, body = mail
    present = any(name == header for name, _ in headers)
    plain = _matches(MatchRow(header, pattern), headers, body)
    negated = _matches(MatchRow(header, pattern, negate=True), headers, body)
    if present:
        assert negated is not plain
    else:
        assert not plain and not negated


@settings(max_examples=100, deadline=None)
@given(pattern=_pattern(), negate=st.booleans(), mail=_mail())
def test_a_missing_header_never_matches(
    pattern: str, negate: bool, mail: tuple[tuple[tuple[str, str], ...], str]
) -> None:
    headers, body = mail
    assert not _matches(MatchRow("X-Missing", pattern, negate), headers, body)


@settings(max_examples=150, deadline=None)
@given(
    addresses=st.lists(_ADDRESS, min_size=1, max_size=4),
    pattern=st.lists(st.sampled_from(_EMAIL_ATOMS), min_size=1, max_size=4).map("".join),
    negate=st.booleans(),
)
def test_emailaddress_matches_iff_some_address_fullmatches(
    addresses: list[str], pattern: str, negate: bool
) -> None:
    value = ", ".join(addresses)
    regex = re2.compile(f"(?:{pattern})", _OPTIONS)
    bare = [a for _, a in getaddresses([value]) if a]
    expected = any(regex.fullmatch(a) for a in bare)
    row = MatchRow("To", f"EMAILADDRESS:{pattern}", negate)
    assert _matches(row, (("To", value),)) is (expected is not negate)


@settings(max_examples=100, deadline=None)
@given(addresses=st.lists(_ADDRESS, min_size=1, max_size=4), pick=st.integers(0, 3))
def test_emailaddress_compares_whole_addresses_in_any_case(addresses: list[str], pick: int) -> None:
    value = ", ".join(addresses)
    bare = [a for _, a in getaddresses([value]) if a]
    target = bare[pick % len(bare)]
    assert _matches(
        MatchRow("To", "EMAILADDRESS:" + re.escape(target.swapcase())), (("To", value),)
    )
    # Anchored at both ends: a proper part of an address is not the address.
    part = re.escape(target[1:])
    expected = any(a.lower() == target[1:].lower() for a in bare)
    assert _matches(MatchRow("To", "EMAILADDRESS:" + part), (("To", value),)) is expected


@settings(max_examples=150, deadline=None)
@given(value=st.text(alphabet="abcXYZ .@-", max_size=30), start=st.integers(0, 30))
def test_matching_is_case_insensitive(value: str, start: int) -> None:
    piece = value[start : start + 4]
    if not piece:
        return
    for header, body in (("Subject", ""), ("Body", value)):
        headers = (("Subject", value),)
        assert _matches(MatchRow(header, re.escape(piece.swapcase())), headers, body)
        assert _matches(MatchRow(header, re.escape(piece.upper())), headers, body)


# --- Order and stop.


@settings(max_examples=100, deadline=None)
@given(
    names=st.lists(st.integers(0, 99), min_size=1, max_size=8, unique=True),
    stops=st.lists(st.booleans(), min_size=8, max_size=8),
    matching=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_rules_run_in_name_order_until_a_matching_rule_stops(
    names: list[int], stops: list[bool], matching: list[bool]
) -> None:
    rules = [
        Rule(
            f"{n:02d}",
            (MatchRow("Subject", "hello" if matching[i] else "absent"),),
            (SetRow("X-PyTRS-Queue", f"q{n:02d}"), SetRow("X-PyTRS-Title", f"t{n:02d}")),
            stops[i],
        )
        for i, n in enumerate(names)
    ]
    expected: list[str] = []
    for rule in sorted(rules, key=lambda r: r.name):
        if rule.match[0].value == "hello":
            expected.append(rule.name)
            if rule.stop:
                break
    for explain in (False, True):
        result = _compile(rules).apply((("Subject", "Hello World"),), "", explain=explain)
        assert [h.rule for h in result.hits] == expected
        last = expected[-1] if expected else None
        assert result.control == (
            {} if last is None else {"X-PyTRS-Queue": f"q{last}", "X-PyTRS-Title": f"t{last}"}
        )


# --- Bounded work on hostile values.


@pytest.mark.parametrize(
    "pattern", ["(a+)+$", "(a|aa)+$", "(a*)*b", "(x+x+)+y", "EMAILADDRESS:(a+)+$"]
)
@pytest.mark.parametrize("explain", [False, True])
def test_catastrophic_patterns_on_a_megabyte_complete(pattern: str, explain: bool) -> None:
    value = "a" * 1_000_000 + "b"
    rows = (MatchRow("Body", pattern), MatchRow("Subject", pattern, negate=True))
    rules = _compile([Rule("r", rows, (SetRow("X-PyTRS-Title", "[***]"),))])
    result: FilterResult = rules.apply((("Subject", value),), value, explain=explain)
    assert result.hits == ()
