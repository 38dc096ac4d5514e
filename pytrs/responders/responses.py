"""Auto-responses as data: their definition, validation, TOML form, and the per-batch table.

Place in the flow: an auto-response is defined in ``[[auto_responses]]`` (``specs_from_config``)
or in a ``pytrs responses import`` file (``specs_from_toml``) as a ``ResponseSpec``; every spec
is checked as a whole (``check_spec``: type, content type, language, and both templates
compiled) before ``schema.response_repo`` stores it in Znuny's ``auto_response`` tables. The
postmaster later reads them back as a ``ResponseTable`` (``responders.stored_responses``
compiles what the repository loads) and picks one per queue, type and language
(``ResponseTable.pick``), then renders it (``AutoResponse.render``). No I/O here but reading
the body files a configuration names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formataddr
from pathlib import Path
from typing import Any

from pytrs.config import Config, ConfigError
from pytrs.config.model import AUTO_RESPONSE_TYPES
from pytrs.responders.templates import (
    CONTENT_TYPES,
    TEXT_HTML,
    TEXT_PLAIN,
    Rendered,
    ResponseTemplate,
    TemplateError,
    TemplateRenderError,
    compile_template,
)
from pytrs.vocabulary.auto_responses import (
    DEFAULT_LANGUAGE,
    Problem,
    ResponseError,
    ResponseSpec,
)

# The records come from the ground floor (the database stores them too); they are part of this
# module's interface, as the checks and the table it builds from them.
__all__ = [
    "DEFAULT_LANGUAGE",
    "NAME_MAX",
    "AutoResponse",
    "Problem",
    "ResponseError",
    "ResponseSpec",
    "ResponseTable",
    "check_spec",
    "content_type_of",
    "default_name",
    "preferred_languages",
    "specs_from_config",
    "template_paths",
]

_LANGUAGE = re.compile(r"[a-z]{2,8}(?:-[a-z0-9]{1,8})*")
_HTML_SUFFIXES = (".html.j2", ".htm.j2", ".html", ".htm")
NAME_MAX = 200  # auto_response.name


def check_spec(spec: ResponseSpec) -> list[Problem]:
    """Everything wrong with `spec` that needs no database: both templates are compiled."""
    problems: list[Problem] = []

    def bad(field_name: str, why: str) -> None:
        problems.append(Problem(spec.name or "(unnamed)", field_name, why))

    if not spec.name.strip() or len(spec.name) > NAME_MAX:
        bad("name", f"required, at most {NAME_MAX} characters")
    if spec.type not in AUTO_RESPONSE_TYPES:
        bad("type", f"must be one of {', '.join(AUTO_RESPONSE_TYPES)}, not {spec.type!r}")
    if spec.content_type not in CONTENT_TYPES:
        bad("content_type", f"must be {' or '.join(CONTENT_TYPES)}, not {spec.content_type!r}")
    if not _LANGUAGE.fullmatch(spec.language) or len(spec.language) > 20:
        bad("language", f"must be a language tag such as en or pt-br, not {spec.language!r}")
    if not spec.queues:
        bad("queues", "at least one queue")
    if not spec.body.strip():
        bad("body", "must not be empty")
    html = spec.content_type == TEXT_HTML
    for part, source, is_html in (("subject", spec.subject, False), ("body", spec.body, html)):
        try:
            compile_template(f"{spec.name}:{part}", source, html=is_html)
        except TemplateError as exc:
            bad(part, str(exc))
    return problems


# --- from the configuration ------------------------------------------------------------------


def specs_from_config(config: Config) -> list[ResponseSpec]:
    """``[[auto_responses]]`` as specs, in file order, with their body files read.

    Raises ConfigError naming every bad key: a missing or unreadable body file, a template that
    does not compile (with its name and line), two entries with one name.
    """
    errors: list[str] = []
    specs: list[ResponseSpec] = []
    for index, entry in enumerate(config.auto_responses):
        key = f"auto_responses[{index}]"
        known = len(errors)
        body, body_key, content_type = _body(config, key, entry.body, entry.body_file, errors)
        spec = ResponseSpec(
            name=entry.name or default_name(entry.queue, entry.type, entry.language),
            queues=(entry.queue,), type=entry.type, subject=entry.subject, body=body,
            language=entry.language.lower(),
            content_type=entry.content_type or content_type,
            sender=entry.sender.lower() or _queue_address(config, entry.queue),
        )  # fmt: skip
        if len(errors) == known:  # the body was read: check the rest
            fields = {"body": body_key, "subject": "subject", "name": "name"}
            errors += [f"{key}.{fields.get(p.field, p.field)}: {p.why}" for p in check_spec(spec)]
        specs.append(spec)
    seen: dict[str, int] = {}
    for index, spec in enumerate(specs):
        first = seen.setdefault(spec.name, index)
        if first != index:
            errors.append(
                f"auto_responses[{index}].name: {spec.name!r} is taken by auto_responses[{first}]"
            )
    if errors:
        raise ConfigError(errors, config.source)
    return specs


def default_name(queue: str, type_name: str, language: str) -> str:
    """ "Support", "auto reply", "en" → "support-auto-reply-en"."""
    return re.sub(r"[^a-z0-9]+", "-", f"{queue}-{type_name}-{language}".lower()).strip("-")


def content_type_of(path: str) -> str:
    """text/html for a template file named *.html.j2 (or .html, .htm), else text/plain."""
    return TEXT_HTML if path.lower().endswith(_HTML_SUFFIXES) else TEXT_PLAIN


def _queue_address(config: Config, queue: str) -> str:
    return next((a.address for a in config.system_addresses if a.queue == queue), "")


def _body(
    config: Config, key: str, inline: str, body_file: str, errors: list[str]
) -> tuple[str, str, str]:
    """(body, the key it came from, content type by file name); errors recorded."""
    if inline and body_file:
        errors.append(f"{key}.body: set either body or body_file")
        return "", "body", TEXT_PLAIN
    if inline:
        return inline, "body", TEXT_PLAIN
    if not body_file:
        errors.append(f"{key}.body_file: required (or an inline body)")
        return "", "body_file", TEXT_PLAIN
    tried = template_paths(body_file, config.source)
    found = next((p for p in tried if p.is_file()), None)
    if found is None:
        errors.append(f"{key}.body_file: not found ({', '.join(map(str, tried))})")
        return "", "body_file", TEXT_PLAIN
    try:
        text = found.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(f"{key}.body_file: cannot read {found}: {exc}")
        return "", "body_file", TEXT_PLAIN
    return text, "body_file", content_type_of(body_file)


def template_paths(path: str, relative_to: str = "") -> list[Path]:
    """Where a template file is looked for: as given when absolute; else next to the file
    `relative_to` (the configuration, an import file), then in the current directory."""
    given = Path(path).expanduser()
    if given.is_absolute():
        return [given]
    places = [Path(relative_to).resolve().parent / given] if relative_to else []
    return list(dict.fromkeys([*places, Path.cwd() / given]))


# --- what the postmaster picks from ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AutoResponse:
    """A stored, valid auto-response with its compiled templates and its sender."""

    id: int
    name: str
    type: str
    language: str
    content_type: str
    sender_address: str
    sender_name: str
    subject: str = field(repr=False)
    body: str = field(repr=False)
    template: ResponseTemplate | None = field(default=None, repr=False)
    error: TemplateError | None = None  # why it does not compile (edited outside pytrs)

    @property
    def sender(self) -> str:
        """The From: value ("Name <address>")."""
        return formataddr((self.sender_name, self.sender_address))

    def render(self, variables: Mapping[str, Any]) -> Rendered:
        """Subject and body for `variables`; raises TemplateRenderError (nothing to send)."""
        if self.template is None:
            reason = self.error.reason if self.error else "no template"
            line = self.error.line if self.error else 0
            raise TemplateRenderError(self.name, f"does not compile: {reason}", line)
        return self.template.render(variables)


@dataclass(frozen=True, slots=True)
class _Choices:
    first: AutoResponse  # lowest id: the fallback when no language matches
    exact: dict[str, AutoResponse]
    primary: dict[str, AutoResponse]  # by primary subtag ("pt" for "pt-br")


class ResponseTable:
    """Valid responses by queue and type, for O(1) picks while a batch is processed."""

    def __init__(self, rows: Iterable[tuple[int, AutoResponse]], version: Any = None) -> None:
        """`rows` are (queue id, response) pairs in ascending response id."""
        self.version = version
        self._choices: dict[tuple[int, str], _Choices] = {}
        for queue_id, response in rows:
            key = (queue_id, response.type)
            choices = self._choices.get(key)
            if choices is None:
                choices = self._choices[key] = _Choices(response, {}, {})
            language = _normal(response.language)
            choices.exact.setdefault(language, response)
            choices.primary.setdefault(language.split("-")[0], response)

    def __len__(self) -> int:
        return len(self._choices)

    def pick(self, queue_id: int, type_name: str, languages: Sequence[str]) -> AutoResponse | None:
        """The response of that queue and type in the first of `languages` there is one for
        (exactly, else by primary subtag: "de-at" finds "de"), else the queue's first response
        of that type in any language; None when the queue has none of that type."""
        choices = self._choices.get((queue_id, type_name))
        if choices is None:
            return None
        for wanted in languages:
            tag = _normal(wanted)
            primary = tag.split("-")[0]
            found = choices.exact.get(tag) or choices.exact.get(primary)
            found = found or choices.primary.get(primary)
            if found is not None:
                return found
        return choices.first


def preferred_languages(*candidates: str, default: str = DEFAULT_LANGUAGE) -> tuple[str, ...]:
    """Language tags in order of preference from values such as the customer's language and a
    Content-Language header ("de-AT, en"), each once, ending with `default`."""
    tags: dict[str, None] = {}
    for value in candidates:
        for item in value.split(","):
            tag = _normal(item.split(";")[0])
            if _LANGUAGE.fullmatch(tag):
                tags.setdefault(tag, None)
    tags.setdefault(_normal(default), None)
    return tuple(tags)


def _normal(tag: str) -> str:
    return tag.strip().lower().replace("_", "-")
