"""Checks that span entries or sections: references to queues, duplicates, conflicting keys.

Place in the flow: the last step of ``parse_config``, after every entry has been built. Entries
that could not be built were already reported and are absent here; ``positions`` maps each
remaining entry back to its index in the file so that errors still name the right key.
"""

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pytrs.config.errors import ErrorList, dotted
from pytrs.config.model import BUILTIN_QUEUES, Config

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
    queues = _check_queue_names(raw.get("queues"), errors)
    _check_queue_references(config, positions, queues, errors)
    _check_duplicates(config, positions, errors)
    _check_mail_accounts(config, positions, errors)
    _check_trusted_sources(config, errors)
    _check_agent_addresses(config, positions, errors)


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


def _report_duplicates(items: Iterable[tuple[str, object]], what: str, errors: ErrorList) -> None:
    first_seen: dict[object, str] = {}
    for key, value in items:
        first = first_seen.setdefault(value, key)
        if first != key:
            errors.add(key, f"duplicate {what} {value!r} (first at {first})")
