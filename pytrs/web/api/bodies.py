"""Reading a request's inputs: path parameters, the query model, the JSON or multipart body.

Place in the flow: `operations.py` calls these before an operation runs; each refuses with a
problem the client can act on: 415 for a Content-Type the operation does not take, 413 for a
body over its limit (checked on Content-Length before reading, and while reading a body sent
without one), 422 `validation-failed` with one entry per invalid value in `errors`
(`location` path|query|body, `field`, `message`). Text holding a NUL or a lone surrogate is
refused here, once for every operation: neither database can store it.
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message

from pytrs.schema import storable
from pytrs.web.api.problems import Problem
from pytrs.web.guards import MAX_FORM_BYTES

if TYPE_CHECKING:
    from pytrs.web.api.operations import Operation

MULTIPART_LIMIT = MAX_FORM_BYTES  # the web view's: 32 MiB
ATTACHMENTS_FIELD = "attachments"  # the multipart file parts an operation gets in ctx.files
INT_MAX = 2**31 - 1  # ids are at most this in every id column of both engines
_SEQUENCES = (list, tuple, set, frozenset)


@dataclass(frozen=True, slots=True)
class Upload:
    """A file part of a multipart request (`ctx.files`), like tickets.model.ArticleAttachment."""

    filename: str
    content_type: str
    content: bytes


def invalid(location: str, errors: list[dict[str, str]]) -> Problem:
    """422 validation-failed; `errors` as {"field", "message"} (the location is added)."""
    listed = [{"location": location, **e} for e in errors]
    first = listed[0]
    where = f"{location} field '{first['field']}'" if first["field"] else f"the {location}"
    more = f" ({len(listed) - 1} more in 'errors')" if len(listed) > 1 else ""
    detail = f"The {where.removeprefix('the ')} is invalid: {first['message'].rstrip('.')}{more}."
    return Problem(422, "validation-failed", detail, errors=listed)


def _from_pydantic(location: str, error: ValidationError) -> Problem:
    found = error.errors(include_url=False, include_input=False, include_context=False)
    return invalid(location, [
        {"field": ".".join(str(part) for part in e["loc"]), "message": e["msg"]} for e in found
    ])  # fmt: skip


def path_values(params: list[tuple[str, str]], values: dict[str, Any]) -> dict[str, Any]:
    """The path parameters (converted by the route), refused when unstorable or out of range."""
    for name, convertor in params:
        value = values[name]
        if convertor == "int" and not 0 <= value <= INT_MAX:
            raise invalid("path", [{"field": name, "message": f"must be at most {INT_MAX}"}])
        if isinstance(value, str) and storable.clean(value) != value:
            raise invalid("path", [{"field": name, "message": _UNSTORABLE}])
    return {name: values[name] for name, _ in params}


_UNSTORABLE = "must not contain NUL characters or invalid UTF-8"


def query_value(model: type[BaseModel], request: Request) -> BaseModel:
    """The query string validated by `model`; repeated parameters fill list fields."""
    lists = _list_fields(model)
    data: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        if any(storable.clean(v) != v for v in values):
            raise invalid("query", [{"field": key, "message": _UNSTORABLE}])
        data[key] = values if key in lists else values[-1]
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _from_pydantic("query", error) from None


def _list_fields(model: type[BaseModel]) -> set[str]:
    """Names (and aliases) of the fields that take several values."""
    found = set()
    for name, info in model.model_fields.items():
        if _is_sequence(info.annotation):
            found.update({name, info.alias or name})
    return found


def _is_sequence(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_sequence(a) for a in typing.get_args(annotation))
    return annotation in _SEQUENCES or origin in _SEQUENCES


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
    files: list[Upload] = []
    if multipart:
        data, files = await _form(op.body, request, raw)
    elif not media and raw.strip():
        raise Problem(
            415,
            "unsupported-media-type",
            "Say what the body is: send Content-Type: application/json.",
        )
    else:
        data = _json(raw) if raw.strip() else {}
    try:
        body = op.body.model_validate(data)
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
        raise invalid("body", [{"field": "", "message": message}]) from None
    _refuse_unstorable(data, "")
    return data


def _refuse_unstorable(value: Any, field: str) -> None:
    if isinstance(value, str):
        if storable.clean(value) != value:
            raise invalid("body", [{"field": field, "message": _UNSTORABLE}])
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_unstorable(key, field)
            _refuse_unstorable(item, f"{field}.{key}" if field else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_unstorable(item, f"{field}.{i}" if field else str(i))


async def _form(
    model: type[BaseModel], request: Request, raw: bytes
) -> tuple[dict[str, Any], list[Upload]]:
    """A multipart body's fields (repeated ones fill list fields) and its `attachments`."""
    replayed = Request(request.scope, _replay(raw))
    try:
        form = await replayed.form(max_part_size=MULTIPART_LIMIT)
    except HTTPException as error:  # a malformed body: Starlette's one line says how
        raise invalid("body", [{"field": "", "message": str(error.detail)}]) from None
    lists = _list_fields(model)
    data: dict[str, Any] = {}
    files: list[Upload] = []
    try:
        for key in form:
            for value in form.getlist(key):
                if isinstance(value, UploadFile):
                    files.append(await _upload(key, value))
                    continue
                if storable.clean(value) != value:
                    raise invalid("body", [{"field": key, "message": _UNSTORABLE}])
                if key in lists:
                    data.setdefault(key, []).append(value)
                else:
                    data[key] = value
    finally:
        await form.close()
    return data, files


async def _upload(key: str, part: UploadFile) -> Upload:
    if key != ATTACHMENTS_FIELD:
        message = f"files go in parts named '{ATTACHMENTS_FIELD}'"
        raise invalid("body", [{"field": key, "message": message}])
    name = storable.clean(part.filename or "attachment")
    content_type = storable.clean(part.content_type or "application/octet-stream")
    return Upload(name, content_type, await part.read())


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


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
