"""Multipart bodies of the API: their text fields for the body model, their files for the
operation.

Place in the flow: `bodies.py` hands a `multipart/form-data` body of a `multipart=True`
operation here, read whole (at most MULTIPART_LIMIT). Its text fields fill the body model:
repeated fields fill list fields, an object field is a JSON text part (the OpenAPI document
says so with an `encoding`), "null" is None for a nullable field that takes no text. Its file
parts named `attachments` become `Upload`s, which the operation gets as `ctx.files`.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message

from pytrs.schema import storable
from pytrs.web.api.problems import validation_failed
from pytrs.web.guards import MAX_FORM_BYTES

MULTIPART_LIMIT = MAX_FORM_BYTES  # the web view's: 32 MiB
ATTACHMENTS_FIELD = "attachments"  # the multipart file parts an operation gets in ctx.files
_SEQUENCES = (list, tuple, set, frozenset)
UNSTORABLE = "must not contain NUL characters or invalid UTF-8"


@dataclass(frozen=True, slots=True)
class Upload:
    """A file part of a multipart request (`ctx.files`), like tickets.model.ArticleAttachment."""

    filename: str
    content_type: str
    content: bytes


def list_fields(model: type[BaseModel]) -> set[str]:
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


async def read_form(
    model: type[BaseModel], request: Request, raw: bytes
) -> tuple[dict[str, Any], list[Upload]]:
    """A multipart body's fields (repeated ones fill list fields) and its `attachments`."""
    replayed = Request(request.scope, _replay(raw))
    try:
        form = await replayed.form(max_part_size=MULTIPART_LIMIT)
    except HTTPException as error:  # a malformed body: Starlette's one line says how
        raise validation_failed("body", [{"field": "", "message": str(error.detail)}]) from None
    lists, structured, nullable = list_fields(model), json_fields(model), _nullable(model)
    data: dict[str, Any] = {}
    files: list[Upload] = []
    try:
        for key in form:
            for value in form.getlist(key):
                if isinstance(value, UploadFile):
                    files.append(await _upload(key, value))
                    continue
                if storable.clean(value) != value:
                    raise validation_failed("body", [{"field": key, "message": UNSTORABLE}])
                item = _json_part(key, value) if key in structured else value
                if value == "null" and key in nullable:
                    item = None  # how a form says "none" for a field that takes no text
                if key not in lists:
                    data[key] = item
                elif isinstance(item, list) and key in structured:
                    data.setdefault(key, []).extend(item)
                else:
                    data.setdefault(key, []).append(item)
    finally:
        await form.close()
    return data, files


def json_fields(model: type[BaseModel]) -> set[str]:
    """Fields (and aliases) holding objects: a multipart body sends each as a JSON text part
    (the OpenAPI document says so with an `encoding`)."""
    found = set()
    for name, info in model.model_fields.items():
        if _is_structured(info.annotation):
            found.update({name, info.alias or name})
    return found


def _nullable(model: type[BaseModel]) -> set[str]:
    """Fields (and aliases) that may be null and take no text: for them a form's "null" is
    None (for a text field it stays the text "null")."""
    found = set()
    for name, info in model.model_fields.items():
        args = typing.get_args(info.annotation)
        if type(None) in args and not any(a is str for a in args):
            found.update({name, info.alias or name})
    return found


def _is_structured(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) or origin in _SEQUENCES:
        return any(_is_structured(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return annotation is dict or origin is dict


def _json_part(key: str, value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        raise validation_failed(
            "body", [{"field": key, "message": "must be JSON (an object)"}]
        ) from None


async def _upload(key: str, part: UploadFile) -> Upload:
    if key != ATTACHMENTS_FIELD:
        message = f"files go in parts named '{ATTACHMENTS_FIELD}'"
        raise validation_failed("body", [{"field": key, "message": message}])
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
