"""The OpenAPI 3.1 document of the API, generated from the declared operations.

Place in the flow: `registry.py` serves `document(operations)` at /api/v1/openapi.json (no
token needed) and the docs page renders it. Nothing here is written by hand per operation:
paths and parameters come from each `Operation`, schemas from its pydantic models (collected
into `components/schemas` in one pass, so a model used for input and output gets an `-Input`
and an `-Output` variant when they differ), and each operation lists the problem responses the
framework may give it (401/403 always; 404 and 422 with path parameters; 422 with a query or
body; 413/415 with a body) plus those of its `problems=`.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from pytrs.web.api.bodies import INT_MAX
from pytrs.web.api.forms import ATTACHMENTS_FIELD, json_fields
from pytrs.web.api.idempotency import HEADER, MAX_KEY, REPLAYED
from pytrs.web.api.operations import Binary, Operation
from pytrs.web.api.problems import MEDIA_TYPE, PROBLEM_TYPES

REF = "#/components/schemas/{model}"
DESCRIPTION = (
    "The JSON API of pytrs: tickets, articles, queues and administration. Authenticate with a "
    "bearer token made by `pytrs tokens create`. Errors are RFC 9457 problem details; their "
    "`type` links to /api/v1/problems."
)
JSON = "application/json"


def document(operations: list[Operation], *, version: str) -> dict[str, Any]:
    """The OpenAPI document (a JSON-ready dict)."""
    shapes, defs = _schemas(operations)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        entry = _operation(op, shapes, defs)
        paths.setdefault(openapi_path(op.path), {})[op.method.lower()] = entry
    tags = sorted({op.tag for op in operations})
    return storable_text(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "pytrs API",
                "version": version,
                "description": DESCRIPTION,
            },
            "servers": [{"url": "/api/v1"}],
            "security": [{"bearer": []}],
            "tags": [{"name": t} for t in tags],
            "paths": paths,
            "components": {
                "schemas": {**defs, "Problem": PROBLEM_SCHEMA},
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "A token from `pytrs tokens create`.",
                    }
                },
            },
        }
    )


def openapi_path(path: str) -> str:
    """ "/queues/{queue_id:int}" → "/queues/{queue_id}"."""
    out = path
    for convertor in (":int", ":str", ":path"):
        out = out.replace(convertor + "}", "}")
    return out


def _schemas(operations: list[Operation]) -> tuple[dict[tuple[Any, str], Any], dict[str, Any]]:
    """The JSON Schema of every model, by (type, mode), and the shared definitions."""
    inputs: dict[tuple[Any, JsonSchemaMode], TypeAdapter[Any]] = {}
    for op in operations:
        wanted: tuple[tuple[Any, JsonSchemaMode], ...] = (
            (op.query, "validation"), (op.body, "validation"), (op.response, "serialization"),
        )  # fmt: skip
        for kind, mode in wanted:
            if kind is not None and kind is not Binary and (kind, mode) not in inputs:
                inputs[(kind, mode)] = TypeAdapter(kind)
    if not inputs:
        return {}, {}
    found, defs = TypeAdapter.json_schemas(
        [(key, mode, adapter) for (key, mode), adapter in inputs.items()],
        ref_template=REF,
    )
    return dict(found), defs.get("$defs", {})


Shapes = dict[tuple[Any, str], Any]


def _operation(op: Operation, shapes: Shapes, defs: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "operationId": op.name,
        "tags": [op.tag],
        "summary": op.summary or op.name.replace("_", " "),
        "description": op.description,
        "x-pytrs-access": op.access,
        "x-pytrs-scope": op.scope,
        "parameters": _parameters(op, shapes, defs),
        "responses": {**_success(op, shapes), **_problems(op)},
    }
    if op.body is not None:
        entry["requestBody"] = _request_body(op, shapes, defs)
    return entry


def _parameters(op: Operation, shapes: Shapes, defs: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for name, convertor in op.path_params:
        schema: dict[str, Any] = {"type": "string", "minLength": 1}
        if convertor == "int":
            schema = {"type": "integer", "minimum": 0, "maximum": INT_MAX}
        found.append({"name": name, "in": "path", "required": True, "schema": schema})
    if op.query is not None:
        model = _resolve(shapes[(op.query, "validation")], defs)
        required = set(model.get("required", ()))
        for name, schema in model.get("properties", {}).items():
            param = {"name": name, "in": "query", "required": name in required, "schema": schema}
            if "description" in schema:
                param["description"] = schema["description"]
            found.append(param)
    if op.idempotent:
        found.append({
            "name": HEADER, "in": "header", "required": False,
            "description": "Makes a retry safe: a request repeated with the same key is "
            "answered with the first answer (header Idempotent-Replayed) instead of a second "
            "effect. A UUID is a good key.",
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY,
                       "pattern": "^[ -~]+$"},
        })  # fmt: skip
    return found


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return dict(defs[ref.rsplit("/", 1)[-1]]) if ref else schema


def _request_body(op: Operation, shapes: Shapes, defs: dict[str, Any]) -> dict[str, Any]:
    assert op.body is not None
    schema = shapes[(op.body, "validation")]
    model = _resolve(schema, defs)
    content: dict[str, Any] = {JSON: {"schema": schema}}
    if op.multipart:
        files = {"type": "array", "items": {"type": "string", "format": "binary"},
                 "description": "Files to attach (file parts named `attachments`)."}  # fmt: skip
        # The form's view of the body: its fields and files; conditions between fields (if,
        # allOf …) stay with the JSON body, as parts are text and files.
        form = {key: model[key] for key in _FORM_KEYS if key in model}
        form["properties"] = {**model.get("properties", {}), ATTACHMENTS_FIELD: files}
        content["multipart/form-data"] = {"schema": form}
        structured = sorted(json_fields(op.body) & set(form["properties"]))
        if structured:  # objects travel as JSON text parts
            encoding = {name: {"contentType": JSON} for name in structured}
            content["multipart/form-data"]["encoding"] = encoding
    return {"required": bool(model.get("required")), "content": content}


_FORM_KEYS = ("type", "title", "description", "required", "additionalProperties")


def _success(op: Operation, shapes: Shapes) -> dict[str, Any]:
    described: dict[str, Any] = {"description": op.summary or "Success"}
    if op.response is Binary:
        described["content"] = {"*/*": {"schema": {}}}
    elif op.response is not None:
        described["content"] = {JSON: {"schema": shapes[(op.response, "serialization")]}}
    headers: dict[str, Any] = {}
    if op.status == 201:
        headers["Location"] = {
            "description": "The path of what the request made (replayed with the answer).",
            "schema": {"type": "string", "format": "uri-reference"},
        }
    if op.idempotent:
        headers[REPLAYED] = {
            "description": "`true` when this is the stored answer to an earlier request with the same Idempotency-Key.",  # noqa: E501
            "schema": {"type": "string", "enum": ["true"]},
        }  # fmt: skip
    if headers:
        described["headers"] = headers
    return {str(op.status): described}


def problem_statuses(op: Operation) -> dict[int, list[str]]:
    """Status → the problem types the framework or the operation may answer `op` with."""
    slugs = ["unauthorized", "forbidden", "insufficient-scope"]
    if op.path_params or op.access in ("ticket-read", "ticket-write"):
        slugs.append("not-found")
    if op.path_params or op.query is not None or op.body is not None or op.idempotent:
        slugs.append("validation-failed")
    if op.body is not None:
        slugs += ["payload-too-large", "unsupported-media-type"]
    if op.idempotent:
        slugs += ["idempotency-key-reused", "conflict"]
    statuses: dict[int, list[str]] = {}
    for slug in (*slugs, *op.problems):
        listed = statuses.setdefault(PROBLEM_TYPES[slug].status, [])
        if slug not in listed:
            listed.append(slug)
    return dict(sorted(statuses.items()))


def _problems(op: Operation) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for status, slugs in problem_statuses(op).items():
        answer: dict[str, Any] = {
            "description": "; ".join(f"{PROBLEM_TYPES[s].title} ({s})" for s in slugs),
            "content": {MEDIA_TYPE: {"schema": {"$ref": REF.format(model="Problem")}}},
            "x-pytrs-problems": slugs,
        }
        if status == 401:
            answer["headers"] = {
                "WWW-Authenticate": {"schema": {"type": "string"}, "required": True}
            }
        answers[str(status)] = answer
    return answers


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference",
                 "description": "Identifies the kind of problem: /api/v1/problems#<slug>."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What is wrong and what to do, for a human."},
        "instance": {"type": "string", "description": "The path of the request."},
        "errors": {
            "type": "array",
            "description": "With validation-failed: each invalid value.",
            "items": {
                "type": "object",
                "required": ["location", "field", "message"],
                "properties": {
                    "location": {"type": "string", "enum": ["path", "query", "header", "body"]},
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}  # fmt: skip


# Text the API takes: no NUL (`bodies.py` refuses it, and lone surrogates: neither database
# stores them). Said in the document, on every plain string schema, so that a client (and
# schemathesis) knows it rather than learning it from a 422. Lone surrogates are left out of
# the pattern: the validators schemathesis uses cannot compile a surrogate range.
STORABLE_TEXT = "^[^\\u0000]*$"
_CONSTRAINED = ("format", "enum", "const", "contentMediaType")


def storable_text(node: Any) -> Any:
    """`node` (the document, or any part) with STORABLE_TEXT on its plain strings (beside a
    pattern of their own, in an `allOf`)."""
    if isinstance(node, dict):
        kind = node.get("type")
        is_text = kind == "string" or (isinstance(kind, list) and "string" in kind)
        if is_text and not any(key in node for key in _CONSTRAINED):
            if "pattern" not in node:
                node = {**node, "pattern": STORABLE_TEXT}
            elif node["pattern"] != STORABLE_TEXT:
                node = {**node, "allOf": [*node.get("allOf", []), {"pattern": STORABLE_TEXT}]}
        return {key: storable_text(value) for key, value in node.items()}
    if isinstance(node, list):
        return [storable_text(item) for item in node]
    return node
