"""The answer of an operation that made something: 201 with the new resource's `Location`.

Place in the flow: the ticket and article creates return this instead of their bare model;
the body is the declared response model's JSON, as the framework would write it.
"""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import Response


def created(answer: BaseModel, location: str) -> Response:
    """201 with `answer` as JSON and `Location: location` (a path under /api/v1)."""
    return Response(
        answer.model_dump_json(by_alias=True),
        status_code=201,
        media_type="application/json",
        headers={"Location": location},
    )
