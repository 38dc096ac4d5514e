"""Auto-responses in the database: Znuny's ``auto_response`` and ``queue_auto_response`` rows.

Stores and loads plain records (``vocabulary.auto_responses.ResponseSpec``, ``StoredResponse``);
it compiles no template. Place in the flow: at start, ``provision`` calls
``sync_auto_responses`` with the ``[[auto_responses]]`` the responders checked, so that the rows
match them; ``pytrs responses import|export`` go through ``store_responses`` (after
``responders.stored_responses`` checked the templates) and ``export_responses``; the
responders read the valid ones with ``usable_responses`` (again only when ``responses_version``
changes) and compile them for the postmaster. What only the database can tell (unknown queues,
types and senders, clashes, rows the configuration owns) is checked here, and an import is all
or nothing: it runs in the caller's transaction and raises before writing.

Rows the configuration owns (created or taken over from ``[[auto_responses]]``, recorded in
``provisioned_row`` as ``provision`` does for its kinds) carry the comment "pytrs.toml" too: a
later start updates them and retires (valid_id 2) those removed from the file, and an import may
not change them (it would be undone at the next start). Of their queue links, a start deletes
only those it made: a link added by other means stays. Every write raises the auto-responses'
change generation in the same transaction, which is how running workers notice it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.config import Config, ConfigError
from pytrs.schema import generations, ownership, response_language
from pytrs.schema.database import utcnow
from pytrs.schema.shape import shape_of
from pytrs.schema.tables import (
    auto_response,
    auto_response_type,
    queue,
    queue_auto_response,
    system_address,
)
from pytrs.vocabulary.auto_responses import (
    Problem,
    ResponseError,
    ResponseSpec,
    stored_content_type,
)

log = logging.getLogger(__name__)

MARK = "pytrs.toml"  # the comment of rows the configuration owns, as in provision.py
VALID, INVALID = 1, 2
RESPONSES, LINKS = "auto_response", "queue_auto_response"  # kinds in provisioned_row


@dataclass(frozen=True, slots=True)
class ImportReport:
    created: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Stored:
    id: int
    spec: ResponseSpec


@dataclass(frozen=True, slots=True)
class _Lookups:
    queues: dict[str, int]
    types: dict[str, int]  # valid types only
    addresses: dict[str, tuple[int, int, bool]]  # value0 → (id, queue id, valid)

    def default_sender(self, queue_name: str) -> str:
        """The queue's first valid system address (lowest id), "" if it has none."""
        wanted = self.queues.get(queue_name)
        found = [(i, a) for a, (i, q, ok) in self.addresses.items() if q == wanted and ok]
        return min(found)[1] if found else ""

    def is_sender(self, address: str) -> bool:
        return address in self.addresses and self.addresses[address][2]


# --- provisioning ---------------------------------------------------------------------------


async def sync_auto_responses(
    conn: AsyncConnection, config: Config, specs: Sequence[ResponseSpec]
) -> None:
    """Make the auto-responses the configuration owns match `specs`, ``[[auto_responses]]`` in
    file order as ``responders.responses.specs_from_config`` checked them.

    Runs in provision's transaction, after queues and system addresses. Raises ConfigError
    naming each sender that is no valid system address.
    """
    look = await _lookups(conn)
    errors: list[str] = []
    resolved: list[ResponseSpec] = []
    for index, spec in enumerate(specs):
        sender = spec.sender or look.default_sender(spec.queues[0])
        if not look.is_sender(sender):
            errors.append(
                f"auto_responses[{index}].sender: {sender!r} is not a valid system address"
                if sender
                else f"auto_responses[{index}].sender: queue {spec.queues[0]!r} has no system "
                "address to send from; set sender"
            )
        errors += [
            f"auto_responses[{index}].{field}: {why}" for field, why in _too_long(conn, spec)
        ]
        resolved.append(dataclasses.replace(spec, sender=sender, comments=MARK))
    if errors:
        raise ConfigError(errors, config.source)
    stored = await _stored(conn)
    owned = await _owned(conn, stored)
    mine: dict[int, str] = {}
    for spec in resolved:
        old = stored.get(spec.name)
        if old is not None and old.id not in owned:
            log.warning(
                "auto response %s: [[auto_responses]] takes over the row of that name", spec.name
            )
        mine[await _write(conn, spec, old, look, provisioned=True)] = spec.name
    await ownership.own(conn, RESPONSES, mine)
    wanted = {spec.name for spec in resolved}
    retired = {
        name for name, s in stored.items() if s.id in owned and name not in wanted and s.spec.valid
    }
    if retired:
        await conn.execute(
            update(auto_response)
            .where(auto_response.c.name.in_(retired))
            .values(valid_id=INVALID, change_time=utcnow(), change_by=1)
        )
    # Rows made by other means may still compete with the configured ones; the oldest wins.
    others = {name: s for name, s in stored.items() if name not in retired}
    for problem in _conflicts(resolved, others):
        log.warning("auto responses: %s", problem)
    await generations.bump(conn, generations.RESPONSES)


async def _owned(conn: AsyncConnection, stored: dict[str, _Stored]) -> set[int]:
    """Ids of the responses the configuration owns."""
    return await ownership.owned(conn, RESPONSES, {s.id: name for name, s in stored.items()})


# --- import and export ----------------------------------------------------------------------


async def store_responses(
    conn: AsyncConnection, specs: Sequence[ResponseSpec], problems: Sequence[Problem] = ()
) -> ImportReport:
    """Create or update the named responses (others stay as they are), in `conn`'s transaction.

    Raises ResponseError listing every problem (types, queues, senders, conflicts, rows the
    configuration owns, plus the `problems` the caller already found: the file's form, the
    templates) before anything is written.
    """
    problems = list(problems)
    look = await _lookups(conn)
    stored = await _stored(conn)
    owned = await _owned(conn, stored)
    resolved: list[ResponseSpec] = []
    unchanged: list[str] = []
    for spec in specs:
        spec = _resolve(spec, look, problems)
        problems += [Problem(spec.name, field, why) for field, why in _too_long(conn, spec)]
        old = stored.get(spec.name)
        if old is not None and _same(old.spec, spec):
            unchanged.append(spec.name)
        elif old is not None and old.id in owned:
            problems.append(
                Problem(
                    spec.name,
                    "name",
                    f"provisioned from {MARK} ([[auto_responses]]); change it there",
                )
            )
        elif spec.comments == MARK:
            problems.append(
                Problem(
                    spec.name,
                    "comments",
                    f'"{MARK}" marks responses provisioned from the configuration',
                )
            )
        else:
            resolved.append(spec)
    problems += _conflicts(resolved, stored)
    if problems:
        raise ResponseError(problems)
    for spec in resolved:
        await _write(conn, spec, stored.get(spec.name), look, provisioned=False)
    if resolved:
        await generations.bump(conn, generations.RESPONSES)
    created = tuple(s.name for s in resolved if s.name not in stored)
    updated = tuple(s.name for s in resolved if s.name in stored)
    return ImportReport(created, updated, tuple(unchanged))


def _resolve(spec: ResponseSpec, look: _Lookups, problems: list[Problem]) -> ResponseSpec:
    """`spec` with its sender filled in; what the database lacks for it recorded."""
    if spec.type not in look.types:
        problems.append(
            Problem(spec.name, "type", f"{spec.type!r} is not a valid auto-response type")
        )
    for queue_name in spec.queues:
        if queue_name not in look.queues:
            problems.append(Problem(spec.name, "queues", f"unknown queue {queue_name!r}"))
    sender = spec.sender or (look.default_sender(spec.queues[0]) if spec.queues else "")
    unknown_queue = not spec.sender and (not spec.queues or spec.queues[0] not in look.queues)
    if not look.is_sender(sender) and not unknown_queue:  # else the queue is the problem
        why = (
            f"{sender!r} is not a valid system address"
            if sender
            else "no system address to send from"
        )
        problems.append(Problem(spec.name, "sender", why))
    return dataclasses.replace(spec, sender=sender)


# Where a response's texts are stored: its body in text0, its subject in text1 (as Znuny).
_TEXT_COLUMNS = (("body", "text0"), ("subject", "text1"))


def _too_long(conn: AsyncConnection, spec: ResponseSpec) -> list[tuple[str, str]]:
    """(field, why) for each text longer than its column holds here: beside Znuny text0/text1
    hold 6000 characters. Refused rather than cut, as a cut template would not compile."""
    shape = shape_of(conn)
    found = []
    for field, column in _TEXT_COLUMNS:
        limit = shape.lengths.get((auto_response.name, column))
        value = getattr(spec, field)
        if limit is not None and len(value) > limit:
            found.append((
                field,
                f"{len(value)} characters, more than the {limit} Znuny's auto_response.{column} "
                "holds; shorten it",
            ))  # fmt: skip
    return found


def _same(a: ResponseSpec, b: ResponseSpec) -> bool:
    return dataclasses.replace(a, queues=tuple(sorted(a.queues))) == dataclasses.replace(
        b, queues=tuple(sorted(b.queues))
    )


def _conflicts(specs: Sequence[ResponseSpec], stored: dict[str, _Stored]) -> list[Problem]:
    """Two valid responses for one queue, type and language: only the first would ever be used."""
    names = {spec.name for spec in specs}
    taken: dict[tuple[str, str, str], str] = {}
    for name, row in sorted(stored.items(), key=lambda item: item[1].id):
        if name not in names and row.spec.valid:
            for queue_name in row.spec.queues:
                taken.setdefault((queue_name, row.spec.type, row.spec.language), name)
    problems = []
    for spec in (s for s in specs if s.valid):
        for queue_name in spec.queues:
            other = taken.setdefault((queue_name, spec.type, spec.language), spec.name)
            if other != spec.name:
                why = f"{queue_name} already has {other!r} for {spec.type} in {spec.language}"
                problems.append(Problem(spec.name, "queues", why))
    return problems


async def export_responses(conn: AsyncConnection) -> list[ResponseSpec]:
    """Every stored response (retired ones with valid = false), by name."""
    return [row.spec for _, row in sorted((await _stored(conn)).items())]


@dataclass(frozen=True, slots=True)
class ResponseChoices:
    """What a response may name, for a form: queue names, valid types, valid senders."""

    queues: tuple[str, ...]
    types: tuple[str, ...]
    senders: tuple[str, ...]


async def response_choices(conn: AsyncConnection) -> ResponseChoices:
    """The queues, valid auto-response types and valid system addresses, each sorted."""
    look = await _lookups(conn)
    senders = (a for a, (_, _, ok) in look.addresses.items() if ok)
    return ResponseChoices(
        tuple(sorted(look.queues)), tuple(sorted(look.types)), tuple(sorted(senders))
    )


async def sender_of(conn: AsyncConnection, spec: ResponseSpec) -> tuple[str, str]:
    """(address, display name) `spec` would send from: its sender, else its first queue's
    first valid system address; ("", "") when there is none."""
    look = await _lookups(conn)
    address = spec.sender or (look.default_sender(spec.queues[0]) if spec.queues else "")
    if not look.is_sender(address):
        return "", ""
    sa = system_address.c
    name = await conn.scalar(select(sa.value1).where(sa.id == look.addresses[address][0]))
    return address, name or ""


# --- reading for the responders ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A valid auto-response as stored, with its sender: the templates are still sources."""

    id: int
    name: str
    type: str
    language: str
    content_type: str
    sender_address: str
    sender_name: str
    subject: str
    body: str
    # Provisioned from pytrs's configuration (comment MARK): its texts are pytrs templates even
    # beside Znuny, where every other response's texts are Znuny's (responders.znuny_tags).
    from_configuration: bool = False


async def responses_version(conn: AsyncConnection) -> tuple[Any, ...]:
    """What tells whether the responses changed, in one cheap query.

    A change is a new generation of the auto-responses or of the system addresses (raised by
    every write pytrs makes), or a new row count or newest change_time in auto_response,
    queue_auto_response or system_address (for edits made by other means).
    """
    return await _version(conn)


async def usable_responses(
    conn: AsyncConnection, *, queue_id: int | None = None, type_name: str | None = None
) -> list[tuple[int, StoredResponse]]:
    """(queue id, response) for every link of a valid response with a valid type and a valid
    sender address, in ascending response id; only those of `queue_id` and `type_name` when
    given."""
    ar, art, sa, qar = (
        auto_response.c,
        auto_response_type.c,
        system_address.c,
        queue_auto_response.c,
    )
    query = (
        select(
            qar.queue_id,
            ar.id,
            ar.name,
            ar.text0,
            ar.text1,
            ar.content_type,
            response_language.language(conn),
            ar.comments,
            art.name.label("type_name"),
            sa.value0,
            sa.value1,
        )
        .select_from(queue_auto_response.join(auto_response, ar.id == qar.auto_response_id))
        .join(auto_response_type, art.id == ar.type_id)
        .join(system_address, sa.id == ar.system_address_id)
        .where(ar.valid_id == VALID, art.valid_id == VALID, sa.valid_id == VALID)
        .order_by(ar.id, qar.queue_id)
    )
    if queue_id is not None:
        query = query.where(qar.queue_id == queue_id)
    if type_name is not None:
        query = query.where(art.name == type_name)
    return [(row.queue_id, _stored_response(row)) for row in await conn.execute(query)]


def _stored_response(row: Any) -> StoredResponse:
    return StoredResponse(
        id=row.id,
        name=row.name,
        type=row.type_name,
        language=row.language,
        content_type=stored_content_type(row.content_type),
        sender_address=row.value0,
        sender_name=row.value1 or "",
        subject=row.text1 or "",
        body=row.text0 or "",
        from_configuration=row.comments == MARK,
    )


async def _version(conn: AsyncConnection) -> tuple[Any, ...]:
    # The generations, then a count and the newest change of each table the table is built
    # from, in one query.
    query = select(
        generations.value(generations.RESPONSES),
        generations.value(generations.ADDRESSES),
        *(
            select(aggregate).select_from(table).scalar_subquery()
            for table in (auto_response, queue_auto_response, system_address)
            for aggregate in (func.count(), func.max(table.c.change_time))
        ),
    )
    return tuple((await conn.execute(query)).one())


# --- shared by provisioning and import ---------------------------------------------------------


async def _lookups(conn: AsyncConnection) -> _Lookups:
    queues = {r.name: r.id for r in await conn.execute(select(queue.c.id, queue.c.name))}
    types = {
        r.name: r.id
        for r in await conn.execute(
            select(auto_response_type.c.id, auto_response_type.c.name).where(
                auto_response_type.c.valid_id == VALID
            )
        )
    }
    sa = system_address.c
    addresses = {
        r.value0.lower(): (r.id, r.queue_id, r.valid_id == VALID)
        for r in await conn.execute(select(sa.id, sa.value0, sa.queue_id, sa.valid_id))
    }
    return _Lookups(queues, types, addresses)


async def _stored(conn: AsyncConnection) -> dict[str, _Stored]:
    """Every auto_response row as a spec, by name."""
    links: dict[int, list[str]] = {}
    query = (
        select(queue_auto_response.c.auto_response_id, queue.c.name)
        .join(queue, queue.c.id == queue_auto_response.c.queue_id)
        .order_by(queue_auto_response.c.id)
    )
    for row in await conn.execute(query):
        links.setdefault(row.auto_response_id, []).append(row.name)
    ar = auto_response.c
    # The row's columns this database has (beside Znuny no `language`), and its language.
    held = [ar[c.name] for c in shape_of(conn).table(auto_response).c if c.name != "language"]
    language = response_language.language(conn)
    type_name = auto_response_type.c.name.label("type_name")
    rows = await conn.execute(
        select(*held, language, type_name, system_address.c.value0)
        .join(auto_response_type, auto_response_type.c.id == ar.type_id)
        .outerjoin(system_address, system_address.c.id == ar.system_address_id)
    )
    return {row.name: _Stored(row.id, _spec(row, links.get(row.id, ()))) for row in rows}


def _spec(row: Any, queues: Iterable[str]) -> ResponseSpec:
    return ResponseSpec(
        name=row.name,
        queues=tuple(queues),
        type=row.type_name,
        subject=row.text1 or "",
        body=row.text0 or "",
        language=row.language,
        content_type=stored_content_type(row.content_type),
        sender=(row.value0 or "").lower(),
        valid=row.valid_id == VALID,
        comments=row.comments or "",
    )


async def _write(
    conn: AsyncConnection,
    spec: ResponseSpec,
    old: _Stored | None,
    look: _Lookups,
    *,
    provisioned: bool,
) -> int:
    """Store `spec` (whose sender and queues exist) over `old`, unless it is the same; returns
    the row's id. `provisioned`: the configuration writes it (see `_link`)."""
    now = utcnow()
    if old is not None and _same(old.spec, spec):
        if provisioned:  # its links become the configuration's too (taken over, upgraded)
            queue_ids = [look.queues[name] for name in spec.queues]
            await _link(conn, old.id, queue_ids, now, provisioned=True)
        return old.id
    values = {
        "text0": spec.body, "text1": spec.subject, "type_id": look.types[spec.type],
        "system_address_id": look.addresses[spec.sender][0], "content_type": spec.content_type,
        **response_language.row_values(conn, spec.language),
        "valid_id": VALID if spec.valid else INVALID, "comments": spec.comments,
        "change_time": now, "change_by": 1,
    }  # fmt: skip
    if old is None:
        result = await conn.execute(
            insert(shape_of(conn).table(auto_response)).values(
                name=spec.name, create_time=now, create_by=1, **values
            )
        )
        key = result.inserted_primary_key
        assert key is not None  # a single-row INSERT always reports its key
        response_id = int(key[0])
    else:
        response_id = old.id
        await conn.execute(
            update(auto_response).where(auto_response.c.id == old.id).values(**values)
        )
    await response_language.store(conn, response_id, spec.language)
    queue_ids = [look.queues[name] for name in spec.queues]
    await _link(conn, response_id, queue_ids, now, provisioned=provisioned)
    return response_id


async def _link(
    conn: AsyncConnection, response_id: int, queue_ids: Iterable[int], now: Any, *,
    provisioned: bool,
) -> None:  # fmt: skip
    """Link the response to exactly `queue_ids`; when `provisioned`, the configuration deletes
    only the links it made (and records the ones it makes)."""
    qar = queue_auto_response.c
    wanted = list(dict.fromkeys(queue_ids))
    existing = {
        r.queue_id: r.id
        for r in await conn.execute(
            select(qar.id, qar.queue_id).where(qar.auto_response_id == response_id)
        )
    }
    keys = {i: _link_key(q, response_id) for q, i in existing.items()}
    mine = await ownership.owned(conn, LINKS, keys) if provisioned else set(keys)
    stale = [i for q, i in existing.items() if q not in wanted and i in mine]
    if stale:
        await conn.execute(delete(queue_auto_response).where(qar.id.in_(stale)))
        await ownership.disown(conn, LINKS, stale)
    fresh = [q for q in wanted if q not in existing]
    if fresh:
        audit = {"create_time": now, "create_by": 1, "change_time": now, "change_by": 1}
        await conn.execute(
            insert(queue_auto_response),
            [{"queue_id": q, "auto_response_id": response_id, **audit} for q in fresh],
        )
    if provisioned:
        rows = await conn.execute(
            select(qar.id, qar.queue_id).where(
                qar.auto_response_id == response_id, qar.queue_id.in_(wanted)
            )
        )
        await ownership.own(conn, LINKS, {r.id: _link_key(r.queue_id, response_id) for r in rows})


def _link_key(queue_id: int, response_id: int) -> str:
    return f"{queue_id}/{response_id}"
