"""Answer templates: checked in the sandbox before they are saved, rendered with a ticket."""

from __future__ import annotations

import pytest

from pytrs.responders.answer_templates import (
    AnswerTemplateError,
    check_answer_template,
    render_answer,
)
from pytrs.responders.templates import sample_variables


def test_a_good_template_passes_and_renders() -> None:
    text = "Dear {{ customer.full_name }},\n\nabout {{ ticket.tn }}:\n{{ quoted }}\n"
    check_answer_template("Greeting", text)
    rendered = render_answer("Greeting", text, sample_variables())
    assert rendered.startswith("Dear Alice Doe,\n\nabout 2026010110000017:\n> Hello,")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{{ ticket.tn ", "line 1"),
        ("{{ nosuch.thing }}", "nosuch"),
        ("{{ ''.__class__ }}", "template answer:Bad"),
        ("{% for x in range(10**9) %}{{ x }}{% endfor %}", "template answer:Bad"),
    ],
)
def test_a_broken_template_is_refused_with_one_line(text: str, why: str) -> None:
    with pytest.raises(AnswerTemplateError) as caught:
        check_answer_template("Bad", text)
    assert why in str(caught.value) and "\n" not in str(caught.value)


def test_only_plain_text_and_a_name() -> None:
    with pytest.raises(AnswerTemplateError, match="content type"):
        check_answer_template("X", "hi", "text/html")
    with pytest.raises(AnswerTemplateError, match="needs a name"):
        check_answer_template("  ", "hi")
