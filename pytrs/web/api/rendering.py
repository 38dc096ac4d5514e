"""Turning what an operation returned into the HTTP response.

Place in the flow: the last step of `operations.py` for each request. A pydantic value is
serialised by the operation's `response=` type; a Starlette `Response` (a download, a response
with headers of its own) passes as it is; nothing, with status 204. Stored times are naive UTC
(schema/tables.py): every naive `datetime` in an answer is sent as UTC with its `Z`, so that
each is an RFC 3339 `date-time`, as the OpenAPI document says, without every model having to
say so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pydantic_core
from starlette.responses import Response

if TYPE_CHECKING:
    from pytrs.web.api.operations import Operation


def render(op: Operation, result: Any) -> Response:
    """The response for what the operation returned."""
    if isinstance(result, Response):
        return result
    if op.response is None:
        return Response(status_code=op.status)
    assert op.adapter is not None, f"{op.name}: response={op.response!r} needs a Response"
    data = op.adapter.dump_python(result, mode="python", by_alias=True)
    return Response(to_json(data), status_code=op.status, media_type="application/json")


def to_json(data: Any) -> bytes:
    """JSON of plain data (as pydantic dumps it), naive datetimes as UTC."""
    return pydantic_core.to_json(_utc(data))


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    if isinstance(value, dict):
        return {key: _utc(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_utc(item) for item in value]
    return value
