"""Auto-responses between the database and the postmaster: checked before they are stored,
compiled when they are read.

Place in the flow: `pytrs responses import` hands its specs to `import_responses`, which
compiles every template (`responses.check_spec`) and lets `schema.response_repo` add what the
database tells before it stores anything. The postmaster reads the valid responses as a
`ResponseTable` with `load_responses` (again only when `current_responses` sees the tables
change) or asks `find_response` for one; the stored templates are compiled here (cached by
their source), and one that no longer compiles (edited outside pytrs) is logged now and
refused when it would be rendered.

Beside Znuny (``[database] mode = "znuny"``, `znuny=True` here) the stored texts are Znuny's,
written with ``<OTRS_*>`` tags: they are translated (``responders.znuny_tags``) before they are
compiled, and the tags pytrs has no value for are logged once per load.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.responders.responses import (
    AutoResponse,
    Problem,
    ResponseSpec,
    ResponseTable,
    check_spec,
)
from pytrs.responders.templates import TEXT_PLAIN, TemplateError, compile_response
from pytrs.responders.znuny_tags import translate
from pytrs.schema import response_repo
from pytrs.schema.response_repo import ImportReport, StoredResponse

log = logging.getLogger(__name__)


async def import_responses(
    conn: AsyncConnection, specs: Sequence[ResponseSpec], problems: Sequence[Problem] = ()
) -> ImportReport:
    """Create or update the named responses (others stay as they are), in `conn`'s transaction.

    Raises ResponseError listing every problem (templates, types, queues, senders, conflicts,
    rows the configuration owns, plus the `problems` already found in the file) before
    anything is written.
    """
    checked = [*problems, *(p for spec in specs for p in check_spec(spec))]
    return await response_repo.store_responses(conn, specs, checked)


async def load_responses(conn: AsyncConnection, *, znuny: bool = False) -> ResponseTable:
    """The valid responses (with a valid type and a valid sender address), compiled; `znuny`:
    the texts are Znuny's (translated first)."""
    version = await response_repo.responses_version(conn)
    return ResponseTable(_compiled(await response_repo.usable_responses(conn), znuny), version)


async def current_responses(
    conn: AsyncConnection, loaded: ResponseTable | None, *, znuny: bool = False
) -> ResponseTable:
    """`loaded` while the tables are unchanged (one cheap query), else a fresh table."""
    version = await response_repo.responses_version(conn)
    if loaded is not None and loaded.version == version:
        return loaded
    return ResponseTable(_compiled(await response_repo.usable_responses(conn), znuny), version)


async def find_response(
    conn: AsyncConnection, queue_id: int, type_name: str, languages: Sequence[str],
    *, znuny: bool = False,
) -> AutoResponse | None:  # fmt: skip
    """The valid response of `queue_id` and `type_name` in the first of `languages` that has
    one, else in any language; None when the queue has no such response."""
    rows = await response_repo.usable_responses(conn, queue_id=queue_id, type_name=type_name)
    return ResponseTable(_compiled(rows, znuny)).pick(queue_id, type_name, languages)


def _compiled(
    rows: Iterable[tuple[int, StoredResponse]], znuny: bool = False
) -> list[tuple[int, AutoResponse]]:
    """(queue id, compiled response) per row; a response linked to several queues is compiled
    once."""
    built: dict[int, AutoResponse] = {}
    out = []
    for queue_id, stored in rows:
        response = built.get(stored.id)
        if response is None:
            response = built[stored.id] = _compile(_from_znuny(stored) if znuny else stored)
        out.append((queue_id, response))
    return out


def _from_znuny(stored: StoredResponse) -> StoredResponse:
    """`stored` with Znuny's tags translated into pytrs's template vocabulary."""
    subject = translate(stored.subject, TEXT_PLAIN)
    body = translate(stored.body, stored.content_type)
    unknown = dict.fromkeys([*subject.unknown, *body.unknown])
    if unknown:
        log.warning(
            "auto response %s: no value for %s (written as Znuny writes them: \"-\")",
            stored.name, ", ".join(unknown),
        )  # fmt: skip
    return replace(stored, subject=subject.template, body=body.template)


def _compile(stored: StoredResponse) -> AutoResponse:
    template, error = None, None
    try:
        template = compile_response(stored.name, stored.subject, stored.body, stored.content_type)
    except TemplateError as exc:  # edited outside pytrs: refused at render time, logged now
        log.error("auto response %s does not compile: %s", stored.name, exc)
        error = exc
    except ValueError as exc:
        error = TemplateError(stored.name, str(exc))
    return AutoResponse(
        id=stored.id,
        name=stored.name,
        type=stored.type,
        language=stored.language,
        content_type=stored.content_type,
        sender_address=stored.sender_address,
        sender_name=stored.sender_name,
        subject=stored.subject,
        body=stored.body,
        template=template,
        error=error,
    )
