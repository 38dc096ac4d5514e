"""Checks that span entries or sections: references to queues, duplicates, conflicting keys.

Place in the flow: the last step of ``parse_config``, after every entry has been built. Entries
that could not be built were already reported and are absent here; ``positions`` maps each
remaining entry back to its index in the file so that errors still name the right key.

``config_warnings`` lists what is allowed but probably not meant (`pytrs config check` prints
it, the daemon logs it at start).
"""

import ipaddress
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pytrs.calendars import CalendarError, calendar_problems
from pytrs.calendars.working_time import zone
from pytrs.config.checks import ZNUNY_DRIVERS
from pytrs.config.errors import ErrorList, dotted
from pytrs.config.listen import listen_address
from pytrs.config.model import BUILTIN_QUEUES, Config, QueueConfig, SlaConfig
from pytrs.vocabulary.znuny import STATE_IDS, STATE_TYPES

T = TypeVar("T")

# Sources that are not mail accounts but may still be trusted with X-PyTRS-* headers.
BUILTIN_SOURCES = ("pipe", "smtp", "lmtp")


def cross_check(
    config: Config,
    positions: Mapping[str, tuple[int, ...]],
    raw: Mapping[str, Any],
    errors: ErrorList,
) -> None:
    """Record every cross-entry problem of ``config`` in ``errors``."""
    _check_outbound(config, errors)
    _check_smtp_tls(config, errors)
    _check_metrics_listen(config, errors)
    queues = _check_queue_names(raw.get("queues"), errors)
    _check_queue_references(config, positions, queues, errors)
    _check_duplicates(config, positions, errors)
    _check_mail_accounts(config, positions, errors)
    _check_trusted_sources(config, errors)
    _check_agent_addresses(config, positions, errors)
    _check_routing_policy(config, positions, errors)
    _check_calendars(config, positions, errors)
    _check_escalation_targets(config, positions, raw.get("calendars"), errors)
    _check_scheduler_timezone(config, errors)
    _check_database_mode(config, errors)


def config_warnings(config: Config) -> list[str]:
    """What the configuration allows but probably does not mean, one line each."""
    warnings = []
    for key, entry in _targets(config):
        budgets = (entry.first_response_minutes, entry.update_minutes, entry.solution_minutes)
        if entry.notify_before_percent and not any(budgets):
            warnings.append(
                f"{key}.notify_before_percent: {entry.name!r} has no first_response, update "
                "or solution budget to warn about"
            )
    return warnings


def _targets(
    config: Config, positions: Mapping[str, tuple[int, ...]] | None = None
) -> list[tuple[str, QueueConfig | SlaConfig]]:
    """Every queue and SLA entry with its key; `positions` as `cross_check` has them (else
    every entry was built, and its index is its position)."""
    where = positions or {
        "queues": tuple(range(len(config.queues))),
        "slas": tuple(range(len(config.slas))),
    }
    entries: list[tuple[str, QueueConfig | SlaConfig]] = []
    entries += _located("queues", config.queues, where)
    entries += _located("slas", config.slas, where)
    return entries


def _located(
    name: str, entries: tuple[T, ...], positions: Mapping[str, tuple[int, ...]]
) -> list[tuple[str, T]]:
    """Pair each built entry with its ``name[index]`` key as written in the file."""
    return [
        (dotted(name, index), entry) for index, entry in zip(positions[name], entries, strict=True)
    ]


def _check_queue_names(raw_queues: object, errors: ErrorList) -> frozenset[str]:
    """Return the queue names usable in references and report duplicates.

    Names are taken from the raw entries, so a queue whose entry failed for another reason
    (say, a bad follow_up) does not also cause "unknown queue" errors wherever it is used.
    """
    names: list[tuple[str, str]] = []
    if isinstance(raw_queues, list | tuple):
        for index, entry in enumerate(raw_queues):
            if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                names.append((dotted("queues", index, "name"), entry["name"]))
    _report_duplicates(names, "queue name", errors)
    return frozenset(BUILTIN_QUEUES).union(name for _, name in names)


def _check_queue_references(
    config: Config,
    positions: Mapping[str, tuple[int, ...]],
    queues: frozenset[str],
    errors: ErrorList,
) -> None:
    references = [("postmaster.default_queue", config.postmaster.default_queue)]
    for key, address in _located("system_addresses", config.system_addresses, positions):
        references.append((dotted(key, "queue"), address.queue))
    for key, agent in _located("agents", config.agents, positions):
        references += [(dotted(key, "queues", i), name) for i, name in enumerate(agent.queues)]
    for key, response in _located("auto_responses", config.auto_responses, positions):
        references.append((dotted(key, "queue"), response.queue))
    for key, account in _located("mail_accounts", config.mail_accounts, positions):
        # "" means: dispatch by recipient address rather than into a fixed queue.
        if account.queue:
            references.append((dotted(key, "queue"), account.queue))
    for key, name in references:
        if name not in queues:
            errors.add(
                key,
                f"unknown queue {name!r}; declare it in [[queues]] "
                f"or use one of {', '.join(BUILTIN_QUEUES)}",
            )


def _check_duplicates(
    config: Config, positions: Mapping[str, tuple[int, ...]], errors: ErrorList
) -> None:
    addresses = _located("system_addresses", config.system_addresses, positions)
    _report_duplicates(
        [(dotted(k, "address"), a.address) for k, a in addresses], "system address", errors
    )
    agents = _located("agents", config.agents, positions)
    _report_duplicates([(dotted(k, "login"), a.login) for k, a in agents], "agent login", errors)
    _report_duplicates(
        [(dotted(k, "email"), a.email.lower()) for k, a in agents], "agent e-mail address", errors
    )
    accounts = _located("mail_accounts", config.mail_accounts, positions)
    # The name keys the fetch cursor and the health shown to admins, so it must be unique.
    _report_duplicates(
        [(dotted(k, "name"), a.name) for k, a in accounts], "mail account name", errors
    )
    keys = _located("dkim_keys", config.dkim_keys, positions)
    _report_duplicates(
        [(dotted(k, "selector"), f"{d.selector}._domainkey.{d.domain.lower()}") for k, d in keys],
        "DKIM key",
        errors,
    )
    responses = _located("auto_responses", config.auto_responses, positions)
    _report_duplicates(
        [(k, f"{r.type} / {r.queue} / {r.language}") for k, r in responses],
        "auto response (type / queue / language)",
        errors,
    )


def _check_mail_accounts(
    config: Config, positions: Mapping[str, tuple[int, ...]], errors: ErrorList
) -> None:
    for key, account in _located("mail_accounts", config.mail_accounts, positions):
        if account.password and account.password_file:
            errors.add(dotted(key, "password_file"), "set either password or password_file")
        if account.type.startswith("pop3") and account.mode == "move":
            errors.add(dotted(key, "mode"), "POP3 has no folders to move to; use keep or delete")


def _check_trusted_sources(config: Config, errors: ErrorList) -> None:
    sources = set(BUILTIN_SOURCES).union(account.name for account in config.mail_accounts)
    for index, source in enumerate(config.postmaster.trusted_sources):
        if source not in sources:
            errors.add(
                dotted("postmaster.trusted_sources", index),
                f"{source!r} is neither pipe, smtp, lmtp nor a mail account name",
            )


def _check_agent_addresses(
    config: Config, positions: Mapping[str, tuple[int, ...]], errors: ErrorList
) -> None:
    system = {entry.address for entry in config.system_addresses}
    for key, agent in _located("agents", config.agents, positions):
        if agent.email.lower() in system:
            # Mail pytrs sends from that address would come back looking like an agent's reply.
            errors.add(dotted(key, "email"), f"{agent.email!r} is also a system address")


def _check_routing_policy(
    config: Config, positions: Mapping[str, tuple[int, ...]], errors: ErrorList
) -> None:
    pm = config.postmaster
    for key, state in (
        ("postmaster.followup_state", pm.followup_state),
        ("postmaster.followup_state_closed", pm.followup_state_closed),
    ):
        if state and state not in STATE_IDS:
            errors.add(key, f"unknown state {state!r}; one of {', '.join(STATE_IDS)}")
    rules = _located("external_ticket_numbers", config.external_ticket_numbers, positions)
    _report_duplicates(
        [(dotted(k, "name"), r.name) for k, r in rules], "external ticket number rule", errors
    )
    state_types = {name for _, name in STATE_TYPES}
    for key, rule in rules:
        for index, name in enumerate(rule.state_types):
            if name not in state_types:
                errors.add(
                    dotted(key, "state_types", index),
                    f"unknown state type {name!r}; one of {', '.join(sorted(state_types))}",
                )


def _check_calendars(
    config: Config, positions: Mapping[str, tuple[int, ...]], errors: ErrorList
) -> None:
    """Each [[calendars]] entry's windows, zone and holidays; a holidays_file is relative to
    the configuration file's directory."""
    calendars = _located("calendars", config.calendars, positions)
    _report_duplicates([(dotted(k, "name"), c.name) for k, c in calendars], "calendar name", errors)
    base_dir = Path(config.source).resolve().parent if config.source else Path.cwd()
    for key, calendar in calendars:
        for problem in calendar_problems(calendar, base_dir):
            where, _, message = problem.partition(": ")
            errors.add(f"{key}.{where}", message)


def _check_escalation_targets(
    config: Config,
    positions: Mapping[str, tuple[int, ...]],
    raw_calendars: object,
    errors: ErrorList,
) -> None:
    """Queues and SLAs name declared calendars (a typo would silently count 24/7); SLA names
    are unique (tickets refer to an SLA by name)."""
    # From the raw entries, so that a calendar with another error is not also "unknown".
    declared = {
        entry["name"]
        for entry in (raw_calendars if isinstance(raw_calendars, list | tuple) else ())
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str)
    }
    for key, entry in _targets(config, positions):
        if entry.calendar and entry.calendar not in declared:
            known = f"one of {', '.join(sorted(declared))}" if declared else "none is declared"
            errors.add(
                dotted(key, "calendar"),
                f"unknown calendar {entry.calendar!r}; declare it in [[calendars]] ({known}), "
                'or leave it "" for 24/7 in [scheduler] timezone',
            )
    slas = _located("slas", config.slas, positions)
    _report_duplicates([(dotted(k, "name"), s.name) for k, s in slas], "SLA name", errors)


def _check_scheduler_timezone(config: Config, errors: ErrorList) -> None:
    try:
        zone(config.scheduler.timezone)
    except CalendarError as exc:
        errors.add("scheduler.timezone", str(exc))


def _check_database_mode(config: Config, errors: ErrorList) -> None:
    database = config.database
    if database.mode != "znuny":
        return
    if database.url.partition(":")[0] not in ZNUNY_DRIVERS:
        errors.add(
            "database.mode",
            '"znuny" runs on Znuny\'s own database, reached as '
            + " or ".join(f"{driver}://" for driver in ZNUNY_DRIVERS)
            + " in database.url",
        )
    if database.own_schema == database.schema:
        errors.add(
            "database.own_schema",
            f"is Znuny's schema ({database.schema!r}): pytrs's own tables need a schema of "
            'their own, e.g. "pytrs"',
        )


def _report_duplicates(items: Iterable[tuple[str, object]], what: str, errors: ErrorList) -> None:
    first_seen: dict[object, str] = {}
    for key, value in items:
        first = first_seen.setdefault(value, key)
        if first != key:
            errors.add(key, f"duplicate {what} {value!r} (first at {first})")


def _check_outbound(config: Config, errors: ErrorList) -> None:
    out = config.outbound
    for secret in ("password", "loop_secret"):
        if getattr(out, secret) and getattr(out, f"{secret}_file"):
            errors.add(f"outbound.{secret}_file", f"set either {secret} or {secret}_file")
    if out.username and not (out.password or out.password_file):
        errors.add("outbound.username", "AUTH needs password or password_file too")
    try:
        relay: tuple[str, int] | str | None = listen_address(out.relay)
    except ValueError:
        relay = None  # already reported by the field rule
    if isinstance(relay, str) and out.tls != "none":
        errors.add("outbound.tls", 'a unix socket relay takes no TLS; use tls = "none"')
    if isinstance(relay, tuple) and out.username and out.tls == "none" and not _local(relay[0]):
        # The password would cross the network in clear.
        errors.add("outbound.username", "AUTH to a remote relay needs tls = starttls or tls")
    if out.lease_seconds < 4 * out.timeout_seconds:
        # A lease that ends while a transaction is still waiting for the relay would let a
        # second sender take the row over and send it again.
        errors.add("outbound.lease_seconds", "must be at least 4 × outbound.timeout_seconds")
    domain = out.message_id_domain
    if domain and not _DOMAIN.fullmatch(domain):
        errors.add("outbound.message_id_domain", f"must be a domain name, not {domain!r}")


def _check_smtp_tls(config: Config, errors: ErrorList) -> None:
    # Whether the files load is checked before start (preflight: `gateway/tls.py`).
    smtp = config.smtp
    if bool(smtp.tls_cert_file) != bool(smtp.tls_key_file):
        missing = "tls_key_file" if smtp.tls_cert_file else "tls_cert_file"
        given = "tls_cert_file" if smtp.tls_cert_file else "tls_key_file"
        errors.add(f"smtp.{missing}", f"missing: smtp.{given} is set; STARTTLS needs both")
    tls = bool(smtp.tls_cert_file and smtp.tls_key_file)
    if smtp.require_tls and not tls:
        errors.add("smtp.require_tls", "needs smtp.tls_cert_file and smtp.tls_key_file")
    if smtp.auth_users_file and not tls:
        errors.add(
            "smtp.auth_users_file",
            "AUTH is offered only after STARTTLS: set smtp.tls_cert_file and smtp.tls_key_file",
        )


def _check_metrics_listen(config: Config, errors: ErrorList) -> None:
    web = config.web
    if web.metrics_listen and web.metrics_listen == web.listen and not _any_port(web.listen):
        # Both listeners would bind the same address: the second could not start.
        errors.add(
            "web.metrics_listen",
            'must differ from web.listen (or be "" to serve the ops endpoints there)',
        )


def _any_port(spec: str) -> bool:
    """Port 0: the system picks a free port for each listener (tests)."""
    try:
        address = listen_address(spec)
    except ValueError:
        return False
    return isinstance(address, tuple) and address[1] == 0


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")


def _local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
