"""Reading a request's inputs: path parameters, the query model, the JSON or multipart body.

Place in the flow: `operations.py` calls these before an operation runs; each refuses with a
problem the client can act on: 415 for a Content-Type the operation does not take, 413 for a
body over its limit (checked on Content-Length before reading, and while reading a body sent
without one), 422 `validation-failed` with one entry per invalid value in `errors`
(`location` path|query|header|body, `field`, `message`). Text holding a NUL or a lone
surrogate is refused here, once for every operation: neither database can store it.

A multipart body (`multipart=True`) is read by `forms.py`.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from pytrs.schema import storable
from pytrs.web.api.forms import MULTIPART_LIMIT, UNSTORABLE, Upload, list_fields, read_form
from pytrs.web.api.problems import Problem, validation_failed

if TYPE_CHECKING:
    from pytrs.web.api.operations import Operation

INT_MAX = 2**31 - 1  # ids are at most this in every id column of both engines
# 422 validation-failed with per-field errors, as resource modules raise it (`problems.py`).
invalid = validation_failed


def _from_pydantic(location: str, error: ValidationError) -> Problem:
    found = error.errors(include_url=False, include_input=False, include_context=False)
    return validation_failed(location, [
        {"field": ".".join(str(part) for part in e["loc"]), "message": e["msg"]} for e in found
    ])  # fmt: skip


def path_values(params: list[tuple[str, str]], values: dict[str, Any]) -> dict[str, Any]:
    """The path parameters (converted by the route), refused when unstorable or out of range."""
    for name, convertor in params:
        value = values[name]
        if convertor == "int" and not 0 <= value <= INT_MAX:
            raise validation_failed(
                "path", [{"field": name, "message": f"must be at most {INT_MAX}"}]
            )
        if isinstance(value, str) and storable.clean(value) != value:
            raise validation_failed("path", [{"field": name, "message": UNSTORABLE}])
    return {name: values[name] for name, _ in params}


def query_value(model: type[BaseModel], request: Request) -> BaseModel:
    """The query string validated by `model`; repeated parameters fill list fields."""
    lists = list_fields(model)
    data: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        if any(storable.clean(v) != v for v in values):
            raise validation_failed("query", [{"field": key, "message": UNSTORABLE}])
        data[key] = values if key in lists else values[-1]
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _from_pydantic("query", error) from None


async def body_value(op: Operation, request: Request) -> tuple[BaseModel, list[Upload], bytes]:
    """The body validated by `op.body`, the uploaded files, and a fingerprint of the request
    (what an Idempotency-Key's retry must repeat)."""
    assert op.body is not None
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    multipart = op.multipart and media == "multipart/form-data"
    is_json = media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
    if media and not (is_json or multipart):
        accepted = "application/json" + (" or multipart/form-data" if op.multipart else "")
        detail = f"This operation takes {accepted}, not {media!r}."
        raise Problem(415, "unsupported-media-type", detail)
    raw = await read_limited(request, MULTIPART_LIMIT if multipart else op.max_body)
    if not media and raw.strip():
        detail = "Say what the body is: send Content-Type: application/json."
        raise Problem(415, "unsupported-media-type", detail)
    files: list[Upload] = []
    try:
        if multipart:
            data, files = await read_form(op.body, request, raw)
            body = op.body.model_validate(data)
        elif raw.strip():
            # Strict: JSON gives types, so `0` is no boolean and `"3"` no integer, as the
            # document says; form fields and query strings are text and stay lax. JSON
            # Schema's integers include 26.0: such numbers are made integers first.
            data = _whole_numbers(_json(raw))
            body = op.body.model_validate_json(json.dumps(data), strict=True)
        else:
            body = op.body.model_validate({})  # no body: the model's defaults
    except ValidationError as error:
        raise _from_pydantic("body", error) from None
    return body, files, fingerprint(request, body, files)


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body; Problem 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> Problem:
    shown = f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"
    return Problem(
        413,
        "payload-too-large",
        f"The request body is larger than this operation's limit of {shown}; send less.",
    )


def _json(raw: bytes) -> Any:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        message = (
            f"not valid JSON ({error})"
            if isinstance(error, json.JSONDecodeError)
            else "not valid JSON"
        )
        raise validation_failed("body", [{"field": "", "message": message}]) from None
    _refuse_unstorable(data, "")
    return data


def _whole_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    return value


def _refuse_unstorable(value: Any, field: str) -> None:
    if isinstance(value, str):
        if storable.clean(value) != value:
            raise validation_failed("body", [{"field": field, "message": UNSTORABLE}])
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_unstorable(key, field)
            _refuse_unstorable(item, f"{field}.{key}" if field else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_unstorable(item, f"{field}.{i}" if field else str(i))


def fingerprint(request: Request, body: BaseModel | None, files: list[Upload]) -> bytes:
    """What makes two requests the same one: method, path, query, body and files (not the
    multipart boundary or the JSON's spacing)."""
    digest = hashlib.sha256()
    shown = body.model_dump_json() if body is not None else ""
    for part in (request.method, request.url.path, request.url.query, shown):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    for f in files:
        digest.update(f"{f.filename}\0{f.content_type}\0".encode("utf-8", "surrogatepass"))
        digest.update(hashlib.sha256(f.content).digest())
    return digest.digest()
