"""The API's human documentation: `/api/v1/docs` (the OpenAPI document rendered) and
`/api/v1/problems` (every problem type; each problem's `type` links to its entry).

Place in the flow: served by `registry.py` without a token, rendered server-side from the same
OpenAPI document clients read, through our own templates (`templates/api/`): no JavaScript, no
CDN, so the pages keep the web view's Content-Security-Policy. This module only flattens the
document for the template: each operation with its parameters, body and response fields (one
level, nested models by name; every model is listed in full at the end) and its problems.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from pytrs.web.api.problems import PROBLEM_TYPES, PROBLEMS_PAGE
from pytrs.web.pages import render

_REF = "#/components/schemas/"


@dataclass(frozen=True, slots=True)
class FieldDoc:
    name: str
    type: str
    required: bool
    description: str


@dataclass(slots=True)
class OperationDoc:
    id: str
    method: str
    path: str
    summary: str
    description: str
    access: str
    scope: str
    parameters: list[FieldDoc]
    body_types: list[str]
    body: list[FieldDoc]
    status: str
    response: str  # the response's type, "" for none
    response_fields: list[FieldDoc]
    problems: list[tuple[str, list[str]]] = field(default_factory=list)  # status, slugs


def docs_page(document: Callable[[], dict[str, Any]]) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint rendering the OpenAPI document `document()` returns."""

    async def api_docs(request: Request) -> Response:
        doc = document()
        context = {
            "title": "API", "doc": doc, "tags": by_tag(doc), "models": models(doc),
            "problems_page": PROBLEMS_PAGE,
        }  # fmt: skip
        return render(request, "api/docs.html", context)

    return api_docs


async def problems_page(request: Request) -> Response:
    problems = sorted(PROBLEM_TYPES.items(), key=lambda item: (item[1].status, item[0]))
    return render(
        request, "api/problems.html", {"title": "API problem types", "problems": problems}
    )


def by_tag(doc: dict[str, Any]) -> list[tuple[dict[str, Any], list[OperationDoc]]]:
    """The operations of each tag (the tag's entry, with its name and description)."""
    grouped: dict[str, list[OperationDoc]] = {t["name"]: [] for t in doc.get("tags", [])}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            grouped.setdefault(op["tags"][0], []).append(_operation(doc, path, method, op))
    tags = {t["name"]: t for t in doc.get("tags", [])}
    return [(tags.get(name, {"name": name}), ops) for name, ops in grouped.items()]


def _operation(doc: dict[str, Any], path: str, method: str, op: dict[str, Any]) -> OperationDoc:
    parameters = [
        FieldDoc(f"{p['name']} ({p['in']})", type_of(p["schema"]), p.get("required", False),
                 p.get("description", ""))
        for p in op.get("parameters", [])
    ]  # fmt: skip
    content = op.get("requestBody", {}).get("content", {})
    body = fields_of(doc, content["application/json"]["schema"]) if content else []
    status, answer = next(iter(op["responses"].items()))
    shown = next(iter(answer.get("content", {}).values()), None)
    schema = shown["schema"] if shown else None
    problems = [
        (code, entry.get("x-pytrs-problems", [])) for code, entry in op["responses"].items()
        if code != status
    ]  # fmt: skip
    return OperationDoc(
        id=op["operationId"], method=method.upper(), path=path, summary=op.get("summary", ""),
        description=op.get("description", ""), access=op.get("x-pytrs-access", ""),
        scope=op.get("x-pytrs-scope", ""), parameters=parameters, body_types=list(content),
        body=body, status=status,
        response=type_of(schema) if schema is not None else "",
        response_fields=fields_of(doc, schema) if schema else [], problems=problems,
    )  # fmt: skip


def models(doc: dict[str, Any]) -> list[tuple[str, str, list[FieldDoc]]]:
    """Every schema of the document: (name, description, fields)."""
    schemas = doc.get("components", {}).get("schemas", {})
    return [
        (name, schema.get("description", ""), fields_of(doc, {"$ref": _REF + name}))
        for name, schema in sorted(schemas.items())
    ]


def fields_of(doc: dict[str, Any], schema: dict[str, Any]) -> list[FieldDoc]:
    """The properties of an object schema (through a $ref, or of an array's items)."""
    schemas = doc.get("components", {}).get("schemas", {})
    if schema.get("type") == "array":
        schema = schema.get("items", {})
    if "$ref" in schema:
        schema = schemas.get(schema["$ref"].removeprefix(_REF), {})
    required = set(schema.get("required", ()))
    return [
        FieldDoc(name, type_of(prop), name in required, prop.get("description", ""))
        for name, prop in schema.get("properties", {}).items()
    ]


def type_of(schema: dict[str, Any]) -> str:
    """A short type for people: "integer", "string | null", "array of QueueOut" …"""
    if "$ref" in schema:
        return str(schema["$ref"]).removeprefix(_REF)
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(type_of(s) for s in schema[key])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " | ".join(kind)
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        return f"object of {type_of(extra)}" if isinstance(extra, dict) else "object"
    return str(schema.get("format", kind)) if kind == "string" and "format" in schema else str(kind)
