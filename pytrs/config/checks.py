"""Per-field value rules of the configuration model.

``model.py`` attaches a rule to a field as dataclass metadata (``field(metadata=rule(...))``), so
the model reads as the table of what is valid; ``parse.py`` runs the rules and reports each
failure under the dotted key. A check takes the already type-checked value and returns an error
message, or None when the value is fine.
"""

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

from pytrs.config.listen import listen_address

Check = Callable[[Any], str | None]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def rule(check: Check, *, each: bool = False) -> Mapping[str, Any]:
    """Field metadata: run ``check`` on the value, or on each item of a tuple if ``each``."""
    return {"check": check, "each": each}


def one_of(*choices: str, ignore_case: bool = False) -> Check:
    listed = ", ".join(choices)
    allowed = {c.casefold() for c in choices} if ignore_case else set(choices)

    def check(value: str) -> str | None:
        found = (value.casefold() if ignore_case else value) in allowed
        return None if found else f"must be one of {listed}, not {value!r}"

    return check


def at_least(minimum: float) -> Check:
    def check(value: float) -> str | None:
        return None if value >= minimum else f"must be at least {minimum}, not {value}"

    return check


def above(minimum: float) -> Check:
    def check(value: float) -> str | None:
        return None if value > minimum else f"must be greater than {minimum}, not {value}"

    return check


def between(low: float, high: float, *, low_open: bool = False) -> Check:
    """A number from ``low`` (excluded if ``low_open``) to ``high``.

    Every numeric key has an upper bound too: a value such as 1e300 seconds or 10**23 rows
    passes a lower bound, then overflows a timedelta or a SQL LIMIT at run time.
    """
    lower = f"greater than {low:g}" if low_open else f"at least {low:g}"

    def check(value: float) -> str | None:
        inside = (value > low if low_open else value >= low) and value <= high
        shown = value if isinstance(value, int) else f"{value:g}"
        return None if inside else f"must be {lower} and at most {high:g}, not {shown}"

    return check


# Upper bounds shared by many keys; generous, far below anything that overflows.
MAX_SECONDS = 7 * 24 * 3600.0  # a week: backoffs, leases, polls, drains
MAX_TIMEOUT_SECONDS = 3600.0  # one network operation
MAX_BYTES = 1 << 30  # one mail or part of it (1 GiB)
MAX_COUNT = 1_000_000  # rows per batch, parts, links, recipients …


def count(low: int, high: int = MAX_COUNT) -> Check:
    return between(low, high)


def size(low: int) -> Check:
    return between(low, MAX_BYTES)


def seconds(high: float = MAX_SECONDS) -> Check:
    """Zero or more seconds (zero: no wait)."""
    return between(0, high)


def positive(high: float = MAX_SECONDS) -> Check:
    """More than zero (a lease, an interval, a timeout), up to ``high``."""
    return between(0, high, low_open=True)


def non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def digits(value: str) -> str | None:
    return None if value.isascii() and value.isdigit() else f"must be digits only, not {value!r}"


# The URL forms pytrs has drivers for (SQLAlchemy dialect+driver names).
DATABASE_DRIVERS = ("postgresql+asyncpg", "mysql+asyncmy", "sqlite+aiosqlite")
# Those that can hold pytrs's own tables apart from an existing Znuny's ([database] mode).
ZNUNY_DRIVERS = ("postgresql+asyncpg",)


def database_url(value: str) -> str | None:
    """A SQLAlchemy URL with one of the async drivers pytrs ships with.

    Only the scheme is repeated in the message: the rest of the URL may hold a password.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    forms = (
        "postgresql+asyncpg://user@host/dbname, mysql+asyncmy://user@host/dbname "
        "or sqlite+aiosqlite:///path/to/pytrs.db"
    )
    scheme = value.partition(":")[0]
    try:
        url = make_url(value)
        port = url.port
    except (ArgumentError, ValueError):
        return f"is not a database URL; write {forms}"
    if url.drivername not in DATABASE_DRIVERS:
        return f"{scheme}:// cannot be used; write {forms}"
    if port is not None and not 0 < port <= 65535:
        return f"port {port} is not a number from 1 to 65535"
    return None


def regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"is not a valid regular expression: {exc}"
    return None


def re2_regex(value: str) -> str | None:
    """A pattern for RE2 (linear time): admin patterns run against untrusted mail."""
    return _re2_compile(value)[1]


def re2_with_group(value: str) -> str | None:
    """A non-empty RE2 pattern whose first group captures the wanted text."""
    if not value:
        return "must not be empty"
    pattern, problem = _re2_compile(value)
    if problem is not None:
        return problem
    return None if pattern.groups >= 1 else "needs a capture group: (…) around the number"


def _re2_compile(value: str) -> tuple[Any, str | None]:
    """The compiled pattern, or None and the problem in RE2's words. RE2's own logging is off:
    it wrote two lines of absl noise to stderr ahead of the one line `config check` gives,
    and its reason comes as bytes (shown as b'…' before)."""
    import re2  # local: only configurations with such patterns pay for the import

    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(value, options), None
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        return None, f"is not a valid RE2 regular expression: {reason}"


def field_name(value: str) -> str | None:
    # Znuny dynamic field names are alphanumeric; they appear in header names.
    if value.isascii() and value.isalnum():
        return None
    return f"must be letters and digits only, not {value!r}"


def identifier(value: str) -> str | None:
    # The schema name ends up in "SET search_path", so only plain identifiers are allowed.
    if value == "" or _IDENTIFIER.fullmatch(value):
        return None
    return f"must be empty or a plain SQL identifier, not {value!r}"


def email_address(value: str) -> str | None:
    local, at, domain = value.rpartition("@")
    if at and local and domain and not any(ch.isspace() for ch in value):
        return None
    return f"must be an e-mail address (local@domain), not {value!r}"


def ip_network(value: str) -> str | None:
    """An IP address or a network in CIDR notation (host bits must be zero)."""
    try:
        ipaddress.ip_network(value.strip())
    except ValueError as exc:
        return f"{exc}: write an IP address or a CIDR network such as 10.0.0.0/8"
    return None


def listen_spec(value: str) -> str | None:
    """A listen or relay address as accepted by ``listen_address``."""
    try:
        listen_address(value)
    except ValueError as exc:
        return str(exc)
    return None


def optional_listen_spec(value: str) -> str | None:
    """Like ``listen_spec``, but "" (meaning: disabled, or the system default) is accepted."""
    return None if value == "" else listen_spec(value)


def optional_host_port(value: str) -> str | None:
    """ "" or a network ``host:port`` (no unix socket), e.g. for the DNS resolver."""
    if value == "":
        return None
    error = listen_spec(value)
    if error is None and isinstance(listen_address(value), str):
        return "must be host:port, not a unix socket path"
    return error


def single_address(value: str) -> str | None:
    """One bare e-mail address (an agent's): no list, no display name."""
    if any(ch in value for ch in ",;<>"):
        return f"must be one e-mail address, not {value!r}"
    if value.count("@") != 1:
        return f"must be an e-mail address (local@domain), not {value!r}"
    return email_address(value)


def login_name(value: str) -> str | None:
    """An agent's login: not empty, no spaces (Znuny's rule)."""
    if not value or any(c.isspace() for c in value):
        return f"a login may not be empty or hold spaces: {value!r}"
    return None
