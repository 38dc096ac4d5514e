"""Control header names: the `X-PyTRS-*` headers that steer routing, and their `X-OTRS-*` aliases.

Sits between the parser and the postmaster filters: a mail's own headers pass through
`strip_untrusted` when its source is not trusted (REFERENCE §1.3, §2), filter rules write control
headers under the names `canonical` returns, and routing reads only those canonical names. The
`X-OTRS-*` spellings are accepted everywhere a name is read so that Znuny rules port unchanged.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping, Sequence

PREFIX = "X-PyTRS-"
ALIAS_PREFIX = "X-OTRS-"

# The suffixes of REFERENCE §2 in their canonical spelling. The legacy TicketKeyN/ArticleKeyN
# family is left out on purpose: it only ever worked through dynamic fields of the same name,
# which `DynamicField-<Name>` covers directly.
_GLOBAL = (
    "Ignore",
    "Loop",
    "Queue",
    "Bounce",
    "Bounce-OriginalMessageID",
    "Bounce-ErrorMessage",
    "AttachmentExists",
    "AttachmentCount",
    "BodyDecrypted",
    "FollowUp-RecognizedTicketNumber",
)
_NEW_TICKET = (
    "State",
    "StateID",
    "State-PendingTime",
    "Priority",
    "PriorityID",
    "Type",
    "TypeID",
    "Service",
    "ServiceID",
    "SLA",
    "SLAID",
    "CustomerNo",
    "CustomerUser",
    "Owner",
    "OwnerID",
    "Responsible",
    "ResponsibleID",
    "Title",
    "Lock",
    "SenderType",
    "IsVisibleForCustomer",
)
_FOLLOW_UP = tuple(
    "FollowUp-" + name
    for name in (
        "Owner",
        "OwnerID",
        "Responsible",
        "ResponsibleID",
        "State",
        "State-PendingTime",
        "State-Keep",
        "Priority",
        "Queue",
        "Lock",
        "Type",
        "Service",
        "SLA",
        "Title",
        "SenderType",
        "IsVisibleForCustomer",
    )
)

# Canonical full names, e.g. "X-PyTRS-Queue", in the order above.
CONTROL_HEADERS: tuple[str, ...] = tuple(PREFIX + s for s in _GLOBAL + _NEW_TICKET + _FOLLOW_UP)

# Znuny's fallback name of the configurable `KeepStateHeader`; ours is fixed.
KEEP_STATE = PREFIX + "FollowUp-State-Keep"

_BY_SUFFIX = {s.lower(): s for s in _GLOBAL + _NEW_TICKET + _FOLLOW_UP}

# Dynamic-field headers carry the field's name, which keeps its own spelling (field names are
# case-sensitive in the ticket store); Znuny field names are alphanumeric.
_DYNAMIC_FIELD = re.compile(r"(followup-)?dynamicfield-([A-Za-z0-9]+)", re.IGNORECASE)


# Which values each control header can take, by kind of name (FollowUp-* as their base). The
# database knows the names of each kind (`schema.names_repo`); the yes/no values are fixed.
# A header missing here takes any text (Title, CustomerNo, a pending time …).
VALUE_KINDS = {
    "Queue": "queue",
    "State": "state",
    "StateID": "state_id",
    "Priority": "priority",
    "PriorityID": "priority_id",
    "Type": "type",
    "TypeID": "type_id",
    "SLA": "sla",
    "SLAID": "sla_id",
    "Owner": "agent",
    "OwnerID": "agent",
    "Responsible": "agent",
    "ResponsibleID": "agent",
    "Lock": "lock",
    "SenderType": "sender_type",
    "IsVisibleForCustomer": "yes_no",
    "State-Keep": "yes_no",
    "Ignore": "ignore",
}
# Kinds compared without regard to case, as the worker reads them.
_ANY_CASE = frozenset({"sender_type", "yes_no", "ignore"})
FIXED_VALUES = {
    # Znuny's yes/no spellings as `changes.article_kind` reads them.
    "yes_no": frozenset({"yes", "no", "true", "false", "on", "off", "1", "0"}),
    # What `planning.is_ignored` honours; any other value leaves the mail alone.
    "ignore": frozenset({"yes", "true"}),
}
DYNAMIC_FIELD_KIND = "dynamic_field"


def value_kind(header: str) -> str | None:
    """The kind of name canonical control header `header` takes, or None for any text."""
    suffix = header[len(PREFIX) :] if header.startswith(PREFIX) else header
    return VALUE_KINDS.get(suffix.removeprefix("FollowUp-"))


def value_problem(header: str, value: str, names: Mapping[str, Collection[str]]) -> str | None:
    """Why `value` in canonical control header `header` would do nothing at mail time, or None.

    `names` holds the valid names of each kind from the database; a dynamic field header must
    name an existing field. The value is stripped as the worker strips it.
    """
    field = _DYNAMIC_FIELD.fullmatch(header[len(PREFIX) :]) if header.startswith(PREFIX) else None
    if field is not None and field.group(2) not in names.get(DYNAMIC_FIELD_KIND, ()):
        return f"there is no ticket dynamic field {field.group(2)!r}"
    kind = value_kind(header)
    if kind is None:
        return None
    valid = FIXED_VALUES.get(kind) or names.get(kind, ())
    wanted = value.strip().lower() if kind in _ANY_CASE else value.strip()
    # An empty value is meaningful: it clears what an earlier rule set.
    if not wanted or wanted in valid:
        return None
    listed = sorted(valid)
    shown = ", ".join(listed[:12]) + (", …" if len(listed) > 12 else "")
    what = {"yes_no": "yes/no value", "ignore": "value"}.get(kind, kind.replace("_", " "))
    return f"{value!r} is no valid {what}; one of: {shown or '(none)'}"


# Every header of every mail passes `canonical`, and most mail repeats the same few dozen names:
# remembering the last answers spares the case folding and prefix tests (bounded, since header
# names are whatever a sender writes).
_NAMES_REMEMBERED = 1024


def _suffix(name: str) -> str | None:
    """The part after either prefix (any case), or None when `name` carries neither."""
    lowered = name.strip().lower()
    for prefix in (PREFIX, ALIAS_PREFIX):
        if lowered.startswith(prefix.lower()):
            return name.strip()[len(prefix) :]
    return None


@functools.lru_cache(maxsize=_NAMES_REMEMBERED)
def canonical(name: str) -> str | None:
    """The canonical `X-PyTRS-*` name of a control header or alias, or None if it is not one."""
    suffix = _suffix(name)
    if suffix is None:
        return None
    known = _BY_SUFFIX.get(suffix.lower())
    if known is not None:
        return PREFIX + known
    field = _DYNAMIC_FIELD.fullmatch(suffix)
    if field is None:
        return None
    follow_up = "FollowUp-" if field.group(1) else ""
    return f"{PREFIX}{follow_up}DynamicField-{field.group(2)}"


@functools.lru_cache(maxsize=_NAMES_REMEMBERED)
def is_control_prefixed(name: str) -> bool:
    """Whether `name` starts with either control prefix (case-insensitive), known or not."""
    return _suffix(name) is not None


def strip_untrusted(
    headers: Sequence[tuple[str, str]],
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """Drop every header with a control prefix; return the rest in order and the removed names.

    Unknown names under either prefix go too: an untrusted sender must not be able to reach a
    header that a later version (or a rule matching on it) would honour.
    """
    kept: list[tuple[str, str]] = []
    removed: list[str] = []
    for name, value in headers:
        if is_control_prefixed(name):
            removed.append(name)
        else:
            kept.append((name, value))
    return tuple(kept), tuple(removed)
