"""The API's errors: RFC 9457 problem details (`application/problem+json`) with a stable type.

Place in the flow: an operation (or the framework around it, see `operations.py`) raises
`Problem(status, slug, detail)`; `problem_response` turns it into the JSON answer. Every slug is
registered in `PROBLEM_TYPES` (ONE line each: slug → status, title, description); its `type`
is a URI reference to its entry on the documentation page `/api/v1/problems`, so a client may
branch on `type` and a human may follow it. Ticket service errors map by class
(`from_ticket_error`). Errors outside any operation (an unknown path, a wrong method, a crash)
are answered here too, by `web/errors.py` and `web/guards.py`, for every path under /api/.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

from pytrs.tickets.errors import InvalidChange, TicketError, TicketMerged, UnknownName

MEDIA_TYPE = "application/problem+json"
PROBLEMS_PAGE = "/api/v1/problems"


@dataclass(frozen=True, slots=True)
class ProblemType:
    status: int
    title: str
    description: str  # what it means and what to do; shown on the problems page


# fmt: off
PROBLEM_TYPES: dict[str, ProblemType] = {
    "bad-request": ProblemType(400, "Bad request", "The request could not be read (a malformed header or encoding)."),  # noqa: E501
    "unauthorized": ProblemType(401, "Unauthorized", "No valid bearer token: missing, unknown, expired or revoked, or its agent is disabled. Create one with `pytrs tokens create`."),  # noqa: E501
    "insufficient-scope": ProblemType(403, "Insufficient scope", "The token's scope does not allow this operation (read < write < admin); use a token created with a wider --scope."),  # noqa: E501
    "forbidden": ProblemType(403, "Forbidden", "The token's agent may not do this: administrators only, or read-only access to the queue."),  # noqa: E501
    "not-found": ProblemType(404, "Not found", "No such resource, or the agent may not see it (a ticket of a queue outside the agent's access is answered exactly like a missing one)."),  # noqa: E501
    "method-not-allowed": ProblemType(405, "Method not allowed", "The resource exists but does not take this HTTP method; the Allow header lists those it takes."),  # noqa: E501
    "conflict": ProblemType(409, "Conflict", "The request conflicts with the resource's current state (a name already taken, a concurrent request with the same Idempotency-Key …)."),  # noqa: E501
    "ticket-merged": ProblemType(409, "Ticket merged", "The ticket was merged into another one and takes no changes or articles; act on the ticket it was merged into."),  # noqa: E501
    "payload-too-large": ProblemType(413, "Payload too large", "The request body exceeds the operation's limit (1 MiB for JSON unless documented otherwise, 32 MiB for multipart)."),  # noqa: E501
    "unsupported-media-type": ProblemType(415, "Unsupported media type", "The request body's Content-Type is not one the operation accepts (application/json, or multipart/form-data where documented)."),  # noqa: E501
    "validation-failed": ProblemType(422, "Validation failed", "A path, query, header or body value is missing or invalid as the OpenAPI document describes it; `errors` lists each with its location, field and message. (A value refused for what the database holds or for what it means has a type of its own.)"),  # noqa: E501
    "unknown-name": ProblemType(422, "Unknown name", "A state, priority, queue, type or agent named in the request does not exist or is not valid."),  # noqa: E501
    "invalid-change": ProblemType(422, "Invalid change", "A change the ticket's current state does not allow (an empty title, locking a closed ticket …)."),  # noqa: E501
    "idempotency-key-reused": ProblemType(422, "Idempotency key reused", "The Idempotency-Key was already used for a different request by this agent; use a new key for a new request."),  # noqa: E501
    "managed-by-configuration": ProblemType(409, "Managed by the configuration file", "The account's address, validity and queue access come from the configuration's [[agents]] and are set again at every start; change them in the file."),  # noqa: E501
    "own-account": ProblemType(422, "Own account", "An administrator cannot demote or disable their own account (the last admin would lock everybody out); ask another administrator."),  # noqa: E501
    "not-quarantined": ProblemType(409, "Not quarantined", "Only a quarantined inbox row can be retried or discarded; this one is pending, processed or already discarded."),  # noqa: E501
    "not-failed": ProblemType(409, "Not failed", "Only a failed outbox row that kept its message can be sent again; a pending one is tried by the sender on its own."),  # noqa: E501
    "invalid-rule": ProblemType(422, "Invalid filter rule", "A filter rule that would not work: a regex RE2 cannot compile, a header that is not one, a set value the database has no name for; `errors` names each wrong row."),  # noqa: E501
    "invalid-mail": ProblemType(422, "Invalid mail to test", "The filter test bench needs exactly one raw mail (text, base64 or a file part), not empty and within its size limit."),  # noqa: E501
    "internal-error": ProblemType(500, "Internal error", "The server could not complete the request; it has been logged. Retry later."),  # noqa: E501
}
# fmt: on


class Problem(Exception):
    """An API error answer. `slug` must be a key of PROBLEM_TYPES; `detail` is one sentence
    for a human saying what is wrong and what to do; `extra` members are added to the JSON
    (e.g. `errors=[…]`); `headers` are sent with it."""

    def __init__(
        self, status: int, slug: str, detail: str, *, headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:  # fmt: skip
        if slug not in PROBLEM_TYPES:
            raise ValueError(f"problem type {slug!r} is not registered in PROBLEM_TYPES")
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self, instance: str) -> dict[str, Any]:
        """The problem details object; `instance` is the request's path."""
        return {
            "type": type_uri(self.slug),
            "title": PROBLEM_TYPES[self.slug].title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            **self.extra,
        }


def is_api(path: str) -> bool:
    """Whether `path` is the API's: its errors are problems, not pages."""
    return path == "/api" or path.startswith("/api/")


def type_uri(slug: str) -> str:
    return f"{PROBLEMS_PAGE}#{slug}"


def problem_response(problem: Problem, instance: str) -> JSONResponse:
    return JSONResponse(
        problem.body(instance),
        status_code=problem.status,
        headers=problem.headers,
        media_type=MEDIA_TYPE,
    )


def unauthorized(detail: str) -> Problem:
    """401, with the challenge RFC 6750 asks for."""
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


# Ticket service errors by class: the service's one-line message becomes the detail. The
# order matters only for subclasses (none today); TicketNotFound is the catch-all 404 below.
_TICKET_ERRORS: tuple[tuple[type[TicketError], int, str], ...] = (
    (TicketMerged, 409, "ticket-merged"),
    (UnknownName, 422, "unknown-name"),
    (InvalidChange, 422, "invalid-change"),
)


def from_ticket_error(error: TicketError) -> Problem:
    """The problem for a ticket service error. A ticket not found says only that: the same
    detail whether it is missing or outside the caller's queues."""
    for kind, status, slug in _TICKET_ERRORS:
        if isinstance(error, kind):
            text = str(error).rstrip(".")
            return Problem(status, slug, f"{text[:1].upper()}{text[1:]}.")
    return Problem(404, "not-found", "There is no such ticket, or you may not see it.")


def from_http_status(status: int, headers: Mapping[str, str] | None = None) -> Problem:
    """The problem for an error Starlette raised outside any operation (routing, 405 …)."""
    if status == 404:
        return Problem(404, "not-found", "There is no such resource in this API; see /api/v1/docs.")
    if status == 405:
        detail = "This resource does not take this method; the Allow header lists those it takes."
        return Problem(405, "method-not-allowed", detail, headers=dict(headers or {}))
    if status == 413:
        return Problem(413, "payload-too-large", "The request body is too large; send less.")
    if status == 415:
        detail = "This Content-Type is not accepted; send application/json."
        return Problem(415, "unsupported-media-type", detail)
    if status >= 500:
        return internal_error()
    return Problem(400, "bad-request", "The request could not be read; check its headers and body.")


def internal_error() -> Problem:
    detail = "The server could not complete this request; it has been logged. Retry later."
    return Problem(500, "internal-error", detail)


def validation_failed(location: str, errors: list[dict[str, str]]) -> Problem:
    """422 validation-failed; `errors` as {"field", "message"} (the location is added)."""
    listed = [{"location": location, **e} for e in errors]
    first = listed[0]
    where = f"{location} field '{first['field']}'" if first["field"] else f"the {location}"
    more = f" ({len(listed) - 1} more in 'errors')" if len(listed) > 1 else ""
    detail = f"The {where.removeprefix('the ')} is invalid: {first['message'].rstrip('.')}{more}."
    return Problem(422, "validation-failed", detail, errors=listed)
