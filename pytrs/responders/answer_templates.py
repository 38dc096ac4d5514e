"""Answer templates (Znuny's `standard_template` of type Answer): checked and rendered in the
auto-responses' sandbox.

Place in the flow: an admin's template is checked here before `schema.standard_template_repo`
stores it (a broken one is refused with one line naming the line of the template), and the
ticket zoom renders the one an agent picks with the ticket's data to start a reply's text.
The variables are the auto-responses' (`responders.templates`: `ticket`, `article` — the
customer's last mail —, `customer`, `queue`, `system`, `quoted`); answers are plain text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytrs.responders.templates import (
    TEXT_PLAIN,
    TemplateCompileError,
    TemplateError,
    compile_template,
)

CONTENT_TYPES = (TEXT_PLAIN,)  # the reply form is plain text


class AnswerTemplateError(ValueError):
    """A template that cannot be saved or rendered; `str()` is one line for the admin."""


def check_answer_template(name: str, text: str, content_type: str = TEXT_PLAIN) -> None:
    """Compile `text` and render it once with sample data. Raises AnswerTemplateError."""
    if content_type not in CONTENT_TYPES:
        raise AnswerTemplateError(f"content type must be {TEXT_PLAIN}, not {content_type!r}")
    if not name.strip():
        raise AnswerTemplateError("a template needs a name")
    try:
        compile_template(f"answer:{name.strip()}", text)
    except TemplateCompileError as exc:
        raise AnswerTemplateError(_one_line(str(exc))) from None


def render_answer(name: str, text: str, variables: Mapping[str, Any]) -> str:
    """The template's text for `variables`. Raises AnswerTemplateError."""
    try:
        return compile_template(f"answer:{name.strip()}", text).render(variables)
    except TemplateError as exc:
        raise AnswerTemplateError(_one_line(str(exc))) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
