"""Auto-response templates: the variables, plain and HTML, the sandbox and its bounds."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pytrs.responders.templates import (
    DEFAULT_LIMITS,
    ArticleVars,
    CustomerVars,
    Limits,
    SystemVars,
    TemplateCompileError,
    TemplateError,
    TemplateLimitError,
    TemplateRenderError,
    TemplateSecurityError,
    TicketVars,
    compile_response,
    compile_template,
    quote,
    sample_variables,
    template_variables,
)

TEMPLATES = Path(__file__).resolve().parents[2] / "config" / "templates"

TICKET = TicketVars(
    tn="2026052410000019", title="Printer on fire", queue="Support", state="new",
    priority="3 normal", hook="Ticket#", customer_user="alice", customer_id="ACME",
    url="https://desk.example.com/ticket/7",
)  # fmt: skip
ARTICLE = ArticleVars(
    subject="Printer on fire", from_="Alice Doe <alice@customer.example>",
    to="support@example.com", cc="bob@customer.example",
    body="line 1\nline 2\n\nline 4\nline 5\nline 6\nline 7\nline 8",
    message_id="<m1@customer.example>", created=datetime(2026, 5, 24, 8, 15, 0, tzinfo=UTC),
)  # fmt: skip
SYSTEM = SystemVars("support@example.com", "Example Support")
CUSTOMER = CustomerVars("alice", "alice@customer.example", "Alice", "Doe")

EVERYTHING = """\
{{ ticket.tn }}|{{ ticket.title }}|{{ ticket.queue }}|{{ ticket.state }}|{{ ticket.priority }}
{{ ticket.hook }}|{{ ticket.customer_user }}|{{ ticket.customer_id }}|{{ ticket.url }}
{{ article.subject }}|{{ article.from }}|{{ article.to }}|{{ article.cc }}
{{ article.message_id }}|{{ article.created }}
{{ customer.login }}|{{ customer.email }}|{{ customer.first_name }}|{{ customer.last_name }}
{{ customer.full_name }}|{{ customer.known }}|{{ queue.name }}
{{ system.address }}|{{ system.name }}
{{ quoted }}
"""


def variables(**changes: Any) -> dict[str, Any]:
    return template_variables(TICKET, replace(ARTICLE, **changes), SYSTEM, CUSTOMER)


def render(source: str, values: dict[str, Any] | None = None, **kw: Any) -> str:
    return compile_template("test", source, **kw).render(values or variables())


def test_every_variable_renders() -> None:
    assert render(EVERYTHING).splitlines() == [
        "2026052410000019|Printer on fire|Support|new|3 normal",
        "Ticket#|alice|ACME|https://desk.example.com/ticket/7",
        "Printer on fire|Alice Doe <alice@customer.example>|support@example.com|"
        "bob@customer.example",
        "<m1@customer.example>|2026-05-24 08:15:00",
        "alice|alice@customer.example|Alice|Doe",
        "Alice Doe|True|Support",
        "support@example.com|Example Support",
        # Six lines quoted, like Znuny's <OTRS_CUSTOMER_EMAIL[6]>; blank lines get no space.
        "> line 1", "> line 2", ">", "> line 4", "> line 5", "> line 6",
    ]  # fmt: skip


def test_unknown_customer_falls_back_to_the_sender() -> None:
    values = template_variables(TICKET, ARTICLE, SYSTEM, None)
    assert values["customer"] == {
        "login": "alice", "email": "alice@customer.example", "first_name": "",
        "last_name": "", "full_name": "Alice Doe", "known": False,
    }  # fmt: skip
    source = "{% if customer.known %}Dear {{ customer.first_name }}{% else %}Hello{% endif %}"
    assert render(source, values) == "Hello"


def test_quote_and_truncate_filters() -> None:
    assert render("{{ article.body|quote(2) }}") == "> line 1\n> line 2"
    assert render("{{ article.body|quote }}").count(">") == 8  # 0: every line
    assert quote("a\n\nb", 0) == "> a\n>\n> b"
    # truncate(n): at most n characters, cut at a word (no leeway), like <OTRS_..._SUBJECT[n]>.
    long = variables(subject="Printer on fire in the second floor")
    assert render("{{ article.subject|truncate(20) }}", long) == "Printer on fire..."
    assert render("{{ article.subject|truncate(40) }}", long) == long["article"]["subject"]


def test_plain_text_is_not_escaped_html_is() -> None:
    hostile = variables(subject='<script>alert("x")</script> & more')
    assert render("{{ article.subject }}", hostile) == '<script>alert("x")</script> & more'
    html = render("<p>{{ article.subject }}</p>", hostile, html=True)
    assert html == "<p>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more</p>"


def test_response_subject_is_one_line_and_html_gets_a_text_part() -> None:
    response = compile_response(
        "support-auto-reply-en", "[{{ ticket.hook }}{{ ticket.tn }}]\n  Re: {{ article.subject }}",
        "<p>Dear {{ customer.full_name }},</p><p>{{ article.subject }}</p>", "text/html",
    )  # fmt: skip
    rendered = response.render(variables(subject="<b>bold</b>"))
    assert rendered.subject == "[Ticket#2026052410000019] Re: <b>bold</b>"  # never escaped
    assert rendered.html == "<p>Dear Alice Doe,</p><p>&lt;b&gt;bold&lt;/b&gt;</p>"
    assert "Dear Alice Doe," in rendered.text and "<b>bold</b>" in rendered.text
    plain = compile_response("x", "s", "Dear {{ customer.first_name }}\n").render(variables())
    assert (plain.text, plain.html) == ("Dear Alice\n", None)


def test_block_tags_leave_no_blank_lines_in_plain_text() -> None:
    source = "a\n{% if ticket.url %}\nurl: {{ ticket.url }}\n{% endif %}\nb\n"
    assert render(source) == "a\nurl: https://desk.example.com/ticket/7\nb\n"


def test_shipped_templates_compile_and_render() -> None:
    files = sorted(TEMPLATES.glob("*.j2"))
    assert files
    for path in files:
        template = compile_template(path.name, path.read_text(), html=".html" in path.name)
        assert "2026052410000019" in template.render(variables())


# --- compile-time errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        ("Hello\n{{ ticket.tn \n", 2, "unexpected"),
        ("a\nb\n{% if x %}\n", 3, ""),  # unclosed block; x is also unknown
        ("{% for a in b %}{% endif %}", 1, "endif"),
        ("ok\n{{ tiket.tn }}", 2, "unknown variable 'tiket'"),
        ("ok\n\n{{ ticket.tnn }}", 3, "has no attribute 'tnn'"),
        ("{{ ticket.tn|frobnicate }}", 1, "No filter named 'frobnicate'"),
        ("{{ '%s'|format(1) }}", 1, "No filter named 'format'"),
        ("x\n{% include 'other.txt' %}", 2, "include"),
        ("{% extends 'base' %}", 1, "extends"),
        ("{% import 'macros' as m %}", 1, "import"),
    ],
)
def test_compile_errors_name_the_template_and_line(source: str, line: int, words: str) -> None:
    with pytest.raises(TemplateCompileError) as info:
        compile_template("support-auto-reply-en:body", source)
    assert info.value.template == "support-auto-reply-en:body"
    assert info.value.line == line
    assert words in str(info.value)
    assert str(info.value).startswith("template support-auto-reply-en:body")


def test_a_template_too_long_is_refused() -> None:
    with pytest.raises(TemplateCompileError, match="longer than 100 characters"):
        compile_template("t", "x" * 101, limits=Limits(template_chars=100))


# --- the sandbox --------------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__['os'] }}",
    "{{ self._TemplateReference__context }}",
    "{{ '{0.__class__}'.format(ticket) }}",
    "{{ '{tn.__class__.__init__.__globals__}'.format_map(ticket) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ ticket.items.__self__.__class__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ ticket|attr('__class__') }}",
    "{{ ticket.update({'tn': 1}) }}",
    "{{ '%s' % ticket }}",
    "{{ range.__globals__ }}",
]


@pytest.mark.parametrize("attack", ESCAPES)
def test_escapes_are_refused_when_saved(attack: str) -> None:
    with pytest.raises(TemplateCompileError) as info:
        compile_template("t", attack)
    assert "sandbox" in info.value.reason or "unsafe" in info.value.reason


@pytest.mark.parametrize("attack", ESCAPES)
def test_escapes_hidden_behind_a_condition_fail_at_mail_time(attack: str) -> None:
    # The trial render when saving takes the other branch; the mail that takes this one gets
    # a typed error and nothing is executed.
    source = f"{{% if ticket.tn == 'trigger' %}}{attack}{{% else %}}fine{{% endif %}}"
    template = compile_template("t", source)
    trigger = variables()
    trigger["ticket"] = {**trigger["ticket"], "tn": "trigger"}
    with pytest.raises(TemplateSecurityError) as info:
        template.render(trigger)
    assert info.value.line == 1
    assert isinstance(info.value, TemplateRenderError)


def test_lipsum_is_gone() -> None:
    with pytest.raises(TemplateCompileError, match="unknown variable 'lipsum'"):
        compile_template("t", "{{ lipsum.__globals__['os'] }}")


LOOP = "{% for i in range(N) %}BODY{% endfor %}"
DOUBLING = "{% set ns = namespace(s=START) %}" + LOOP.replace("N", "64")


def loop(n: object, body: str) -> str:
    return LOOP.replace("N", str(n)).replace("BODY", body)


HOSTILE = [
    (loop("10**9", "x"), "range() of more than"),
    ("{{ range(10**20)|list }}", "range() of more than"),
    (loop(10000, loop(10000, "")), "loop"),
    (loop(9999, "{% for j in range(9999) if j < 0 %}{% endfor %}"), "loop"),
    ("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(64) }}",
     "macro"),
    ("{% macro f(n) %}{{ f(n+1) }}{% endmacro %}{{ f(0) }}", "too deep"),
    ("{{ 'x' * 10**9 }}", "more than"),
    ("{{ 2**100000 }}", "integer power"),
    (DOUBLING.replace("START", "'x'").replace("BODY", "{% set ns.s = ns.s ~ ns.s %}"),
     "concatenation"),
    (DOUBLING.replace("START", "['x']").replace("BODY", "{% set ns.s = ns.s + ns.s %}"),
     "+ result"),
    ("{{ 'a'|center(10**9) }}", "center()"),
    ("{{ article.body|indent(10**8) }}", "indent()"),
    ("{{ article.body|wordwrap(1, wrapstring=article.body * 1000) }}", "wordwrap()"),
    ("{{ range(10000)|map('string')|join(article.body * 100) }}", "join()"),
    ("{{ article.body|replace('', article.body * 1000) }}", "replace()"),
    ("{{ [1]|batch(10**8, 'x')|list }}", "batch()"),
    ("{{ [1]|slice(10**8, 'x')|list }}", "slice()"),
    (loop(5000, "y" * 1000), "characters"),
    ("{% set x %}" + loop(9000, "{{ article.body * 1000 }}") + "{% endset %}", "characters in all"),
]  # fmt: skip


@pytest.mark.parametrize(("attack", "words"), HOSTILE)
def test_unbounded_work_is_refused_quickly(attack: str, words: str) -> None:
    # A deadline far beyond the default, so that the guard named by `words` must be what
    # stops the attack: each is a bound on work, which holds however loaded the machine is
    # (the wall-clock deadline, the last resort, has its own test below).
    generous = replace(DEFAULT_LIMITS, seconds=60.0)
    with pytest.raises(TemplateCompileError) as info:
        compile_template("t", attack, limits=generous)
    assert words in info.value.reason


def test_methods_that_multiply_strings_are_refused() -> None:
    for method in ("ljust(10**9)", "center(10**9)", "zfill(10**9)", "replace('', 'xx')"):
        with pytest.raises(TemplateCompileError, match="not available in templates"):
            compile_template("t", "{{ article.subject." + method + " }}")
    assert render("{{ article.subject.upper() }} {{ article.subject.split()|length }}") == (
        "PRINTER ON FIRE 3"
    )


def test_limits_fail_at_mail_time_with_a_typed_error() -> None:
    # Fine with the sample data, too much for this mail's body.
    template = compile_template("t", "{{ article.body * 10000 }}")
    with pytest.raises(TemplateLimitError) as info:
        template.render(variables(body="x" * 200))
    assert isinstance(info.value, TemplateRenderError) and isinstance(info.value, TemplateError)
    assert info.value.template == "t" and info.value.line == 1


def test_the_deadline_stops_a_slow_render() -> None:
    source = "{% for i in range(10000) %}{{ article.body|wordwrap(3) }}{% endfor %}"
    limits = Limits(seconds=0.05, work_chars=10**9, output_chars=10**9)
    template = compile_template("t", "{{ article.body }}", limits=limits)
    # Compiled (and tried on the sample data) without a deadline worth the name, so that a
    # loaded machine cannot make the compile step the one that runs out of time.
    patient = replace(DEFAULT_LIMITS, seconds=60.0)
    compiled = compile_template("t", source, limits=patient).compiled
    slow = replace(template, compiled=compiled, limits=limits)
    start = time.monotonic()
    with pytest.raises(TemplateLimitError, match=r"longer than 0\.05 s"):
        slow.render(variables(body="word " * 2000))
    # The render without the deadline takes seconds; stopped, it ends within a step of it.
    assert time.monotonic() - start < 2


def test_output_is_bounded() -> None:
    limits = Limits(output_chars=1000)
    template = compile_template("t", "{{ article.body }}", limits=limits)
    assert template.render(variables(body="x" * 1000)) == "x" * 1000
    with pytest.raises(TemplateLimitError, match="output longer than 1000"):
        template.render(variables(body="x" * 1001))


def test_huge_bodies_are_cut_before_templates_see_them() -> None:
    values = variables(body="y" * 500_000)
    assert len(values["article"]["body"]) == 100_000


def test_undefined_at_mail_time_is_a_render_error() -> None:
    template = compile_template("t", "{{ ticket.title }}")
    values = variables()
    del values["ticket"]["title"]
    with pytest.raises(TemplateRenderError, match="has no attribute 'title'"):
        template.render(values)


def test_rendering_is_fast() -> None:
    response = compile_response(
        "r", "[{{ ticket.hook }}{{ ticket.tn }}] {{ article.subject }}",
        (TEMPLATES / "auto-reply.en.txt.j2").read_text(),
    )  # fmt: skip
    values = sample_variables()
    start = time.perf_counter()
    for _ in range(200):
        response.render(values)
    assert (time.perf_counter() - start) / 200 < 0.005
