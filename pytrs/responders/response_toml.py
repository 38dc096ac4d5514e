"""The TOML form of auto-responses, for `pytrs responses import|export`.

Place in the flow: ``commands.responses`` reads an import file with ``parse_toml`` (every
problem of form reported with the response's name and field) and hands the specs to
``responders.stored_responses.import_responses``, which checks the rest; export writes what
``response_repo.export_responses`` returns with ``specs_to_toml``. Bodies are written as
multi-line literal strings where TOML allows, so an exported file reads like the templates.

    [[responses]]
    name = "support-auto-reply-en"      # unique; how imports find the row to update
    queues = ["Support"]
    type = "auto reply"                 # or auto reply/new ticket, auto follow up, auto reject
    language = "en"
    content_type = "text/plain"         # or text/html
    sender = "support@example.com"      # a system address; "" = the first queue's first
    valid = true                        # false retires it
    comments = ""
    subject = "[{{ ticket.hook }}{{ ticket.tn }}] Re: {{ article.subject }}"
    body = '''
    Dear {{ customer.full_name }}, …'''    # or body_file = "path", relative to the file
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pytrs.responders.responses import (
    DEFAULT_LANGUAGE,
    Problem,
    ResponseError,
    ResponseSpec,
    check_spec,
    content_type_of,
    template_paths,
)
from pytrs.responders.templates import TEXT_PLAIN

_TOML_KEYS = {
    "name", "queues", "type", "language", "content_type", "sender", "valid", "comments",
    "subject", "body", "body_file",
}  # fmt: skip


def specs_from_toml(data: Mapping[str, Any], relative_to: str = "") -> list[ResponseSpec]:
    """Specs from a parsed ``[[responses]]`` file, each checked with ``check_spec``; raises
    ResponseError listing every problem. ``body_file`` paths are found with
    ``template_paths(…, relative_to)``."""
    specs, problems = parse_toml(data, relative_to)
    problems += [p for spec in specs for p in check_spec(spec)]
    if problems:
        raise ResponseError(problems)
    return specs


def parse_toml(
    data: Mapping[str, Any], relative_to: str = ""
) -> tuple[list[ResponseSpec], list[Problem]]:
    """The entries of a ``[[responses]]`` file, and what is wrong with their form (unknown
    keys, wrong types, unreadable body files, a name used twice). Templates are not compiled
    here: ``check_spec`` (or ``stored_responses.import_responses``) does that, so that one round
    reports everything."""
    problems: list[Problem] = []
    for key in data:
        if key != "responses":
            problems.append(Problem("(file)", key, "unknown key; the file holds [[responses]]"))
    tables = data.get("responses", [])
    if not isinstance(tables, list):
        problems.append(Problem("(file)", "responses", "must be an array of tables [[responses]]"))
        tables = []
    specs: list[ResponseSpec] = []
    seen: set[str] = set()
    for index, table in enumerate(tables):
        spec = _spec_from_table(table, index, relative_to, problems)
        if spec is None:
            continue
        if spec.name in seen:
            problems.append(Problem(spec.name, "name", "appears twice in the file"))
        seen.add(spec.name)
        specs.append(spec)
    return specs, problems


def _spec_from_table(
    table: Any, index: int, relative_to: str, problems: list[Problem]
) -> ResponseSpec | None:
    if not isinstance(table, Mapping):
        problems.append(Problem(f"#{index + 1}", "responses", "must be a table"))
        return None
    name = table.get("name")
    label = name if isinstance(name, str) and name else f"#{index + 1}"
    for key in sorted(set(table) - _TOML_KEYS):
        problems.append(Problem(label, key, "unknown key"))
    strings = {}
    for key, default in (
        ("name", None), ("type", None), ("subject", None), ("language", DEFAULT_LANGUAGE),
        ("content_type", ""), ("sender", ""), ("comments", ""), ("body", ""), ("body_file", ""),
    ):  # fmt: skip
        value = table.get(key, default)
        if not isinstance(value, str):
            why = "required, a string" if default is None else "must be a string"
            problems.append(Problem(label, key, why))
            value = ""
        strings[key] = value
    queues = table.get("queues")
    if not isinstance(queues, list) or not all(isinstance(q, str) and q for q in queues):
        problems.append(Problem(label, "queues", "required, a list of queue names"))
        queues = []
    valid = table.get("valid", True)
    if not isinstance(valid, bool):
        problems.append(Problem(label, "valid", "must be true or false"))
    body, content_type = _toml_body(strings, label, relative_to, problems)
    return ResponseSpec(
        name=strings["name"], queues=tuple(queues), type=strings["type"],
        subject=strings["subject"], body=body, language=strings["language"].lower(),
        content_type=strings["content_type"] or content_type, sender=strings["sender"].lower(),
        valid=valid is not False, comments=strings["comments"],
    )  # fmt: skip


def _toml_body(
    strings: Mapping[str, str], label: str, relative_to: str, problems: list[Problem]
) -> tuple[str, str]:
    body, body_file = strings["body"], strings["body_file"]
    if body and body_file:
        problems.append(Problem(label, "body", "set either body or body_file"))
    if body or not body_file:
        return body, TEXT_PLAIN
    tried = template_paths(body_file, relative_to)
    found = next((p for p in tried if p.is_file()), None)
    try:
        if found is None:  # named with the places looked in, as [[auto_responses]] does
            raise OSError(f"not found ({', '.join(map(str, tried))})")
        return found.read_text(encoding="utf-8"), content_type_of(body_file)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(label, "body_file", f"cannot read {body_file}: {exc}"))
        return "", TEXT_PLAIN


def specs_to_toml(specs: Iterable[ResponseSpec]) -> str:
    """The specs as ``[[responses]]`` TOML that ``specs_from_toml`` reads back unchanged."""
    out: list[str] = []
    for spec in specs:
        if spec.comments == "pytrs.toml":
            out.append("# Provisioned from [[auto_responses]] in pytrs.toml: change it there.")
        out += [
            "[[responses]]",
            f"name = {_toml_str(spec.name)}",
            f"queues = [{', '.join(_toml_str(q) for q in spec.queues)}]",
            f"type = {_toml_str(spec.type)}",
            f"language = {_toml_str(spec.language)}",
            f"content_type = {_toml_str(spec.content_type)}",
            f"sender = {_toml_str(spec.sender)}",
            f"valid = {'true' if spec.valid else 'false'}",
            f"comments = {_toml_str(spec.comments)}",
            f"subject = {_toml_str(spec.subject)}",
            f"body = {_toml_text(spec.body)}",
            "",
        ]
    return "\n".join(out)


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n"}
_TOML_ESCAPES.update({"\f": "\\f", "\r": "\\r"})


def _toml_str(value: str) -> str:
    """A TOML basic string, control characters escaped."""
    chars = [
        _TOML_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c)
        for c in value
    ]
    return '"' + "".join(chars) + '"'


def _toml_text(value: str) -> str:
    """A multi-line literal string when the text allows one (readable, no escapes), else a
    basic string: literal strings cannot hold ''' or control characters other than tab."""
    plain = all(c in "\t\n" or (ord(c) >= 0x20 and ord(c) != 0x7F) for c in value)
    if plain and "'''" not in value and not value.endswith("'"):
        return "'''\n" + value + "'''"
    return _toml_str(value)
