"""Tests of pytrs.config: the TOML file, environment overrides and validation (SPEC S3)."""

import dataclasses
import os
import pickle
import re
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest

from pytrs.config import (
    AgentConfig,
    Config,
    ConfigError,
    DaemonConfig,
    MailAccountConfig,
    QueueConfig,
    SystemAddressConfig,
    listen_address,
    load_config,
    parse_config,
)
from pytrs.config.crosscheck import config_warnings
from pytrs.config.model import ARRAYS, SECTIONS

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "pytrs.example.toml"

# In the example, "#" directly followed by a key or a [[table]] header is a commented-out setting;
# "# " starts prose.
COMMENTED_SETTING = re.compile(r"^#(?=[\[a-z_])", re.MULTILINE)


def errors_of(data: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, environ)
    return info.value.errors


def only_error(data: dict[str, Any], environ: dict[str, str] | None = None) -> str:
    errors = errors_of(data, environ)
    assert len(errors) == 1, errors
    return errors[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- defaults and the example file ---------------------------------------------------------


def test_defaults_when_there_is_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert config == Config()
    assert config.source == ""
    assert config.database.url == "sqlite+aiosqlite:///var/pytrs.db"
    assert config.smtp.listen == ("127.0.0.1:2525",)
    assert config.web.listen == "127.0.0.1:8080"
    assert config.postmaster.default_queue == "Raw"
    assert config.queues == ()


def test_example_file_loads_with_the_demo_set_up() -> None:
    config = load_config(EXAMPLE, environ={})
    assert config.source == str(EXAMPLE)
    assert [(q.name, q.follow_up) for q in config.queues] == [
        ("Support", "possible"),
        ("Sales", "new_ticket"),
    ]
    assert [(a.address, a.queue) for a in config.system_addresses] == [
        ("support@example.com", "Support"),
        ("sales@example.com", "Sales"),
    ]
    assert config.mail_accounts == config.dkim_keys == config.auto_responses == ()


def test_example_sections_hold_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # The example says `processes = 1`, the default of a machine with two CPUs or more.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    config = load_config(EXAMPLE, environ={})
    for name, cls in SECTIONS.items():
        assert getattr(config, name) == cls(), f"[{name}] in the example differs from defaults"


def test_example_documents_every_key_of_every_section() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    uncommented = COMMENTED_SETTING.sub("", text)
    data = tomllib.loads(uncommented)
    for name, cls in SECTIONS.items():
        missing = {f.name for f in dataclasses.fields(cls)} - set(data[name])
        assert not missing, f"[{name}] lacks {missing}"
    for name, cls in ARRAYS.items():
        documented = set().union(*(entry.keys() for entry in data[name]))
        missing = {f.name for f in dataclasses.fields(cls)} - documented
        assert not missing, f"[[{name}]] lacks {missing}"
    # The commented-out examples must be valid too, once enabled.
    config = parse_config(data)
    assert config.mail_accounts[0].name == "support@127.0.0.1"


def test_every_key_in_the_example_has_a_comment_above_it() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    # Only the first entry of an array documents its keys; later ones repeat them for the demo.
    seen: set[tuple[str, str]] = set()
    table = ""
    for number, line in enumerate(lines):
        setting = line.removeprefix("#")
        if setting.startswith("["):
            table = setting.strip("[] ")
            continue
        key = re.match(r"([a-z_]+) = ", setting)
        if key is None or (table, key[1]) in seen:
            continue
        seen.add((table, key[1]))
        assert lines[number - 1].startswith("# "), f"line {number + 1}: {line!r} is undocumented"


# --- unknown keys, types, values -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"smpt": {}}, "smpt"),
        ({"smtp": {"listn": ["127.0.0.1:25"]}}, "smtp.listn"),
        ({"queues": [{"name": "A"}, {"name": "B", "folow_up": "reject"}]}, "queues[1].folow_up"),
        ({"source": "x"}, "source"),
    ],
)
def test_unknown_keys_are_errors_naming_the_dotted_key(data: dict[str, Any], key: str) -> None:
    assert only_error(data).startswith(f"{key}: unknown key")


def test_unknown_key_error_suggests_the_closest_key() -> None:
    assert "did you mean 'listen'" in only_error({"smtp": {"listn": []}})


def test_all_errors_are_reported_together() -> None:
    data = {
        "bogus": 1,
        "smtp": {"max_message_size": "big"},
        "queues": [{"name": "Support", "follow_up": "maybe"}, {"comments": "no name"}],
        "system_addresses": [{"address": "help@example.com", "queue": "Helpdesk"}],
    }
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="site.toml")
    assert [error.split(":")[0] for error in info.value.errors] == [
        "bogus",
        "smtp.max_message_size",
        "queues[0].follow_up",
        "queues[1].name",
        "system_addresses[0].queue",
    ]
    message = str(info.value)
    assert "5 configuration errors in site.toml" in message
    assert all(error in message for error in info.value.errors)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"smtp": {"max_message_size": "25M"}}, "smtp.max_message_size: must be an integer"),
        ({"postmaster": {"workers": True}}, "postmaster.workers: must be an integer"),
        ({"postmaster": {"workers": 1.5}}, "postmaster.workers: must be an integer"),
        ({"database": {"echo": "yes"}}, "database.echo: must be a boolean"),
        ({"database": {"url": 5}}, "database.url: must be a string"),
        ({"smtp": {"listen": "127.0.0.1:25"}}, "smtp.listen: must be an array"),
        ({"smtp": {"listen": ["127.0.0.1:25", 25]}}, "smtp.listen[1]: must be a string"),
        ({"daemon": {"drain_seconds": "soon"}}, "daemon.drain_seconds: must be a finite number"),
        ({"daemon": {"drain_seconds": float("inf")}}, "daemon.drain_seconds: must be a finite"),
        ({"smtp": 5}, "smtp: must be a table"),
        ({"queues": {"name": "Support"}}, "queues: must be an array of tables"),
        ({"queues": ["Support"]}, "queues[0]: must be a table"),
        (
            {"agents": [{"login": "a", "email": "a@example.com", "queues": "Raw"}]},
            "agents[0].queues: must be an array",
        ),
    ],
)
def test_wrong_types_are_errors(data: dict[str, Any], error: str) -> None:
    assert only_error(data).startswith(error)


def test_ints_are_accepted_for_float_fields_and_lists_become_tuples() -> None:
    config = parse_config({"smtp": {"commit_delay_ms": 5, "listen": ["127.0.0.1:25", "[::1]:25"]}})
    assert config.smtp.commit_delay_ms == 5.0
    assert isinstance(config.smtp.commit_delay_ms, float)
    assert config.smtp.listen == ("127.0.0.1:25", "[::1]:25")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            {"queues": [{"name": "Q", "follow_up": "maybe"}]},
            "queues[0].follow_up: must be one of possible, reject, new_ticket",
        ),
        (
            {"ticket": {"number_generator": "Sequential"}},
            "ticket.number_generator: must be one of DateChecksum, Date, AutoIncrement, Random",
        ),
        ({"ticket": {"subject_format": "left"}}, "ticket.subject_format: must be one of Left"),
        ({"ticket": {"system_id": "1a"}}, "ticket.system_id: must be digits only"),
        (
            {"postmaster": {"unknown_sender_followup": "drop"}},
            "postmaster.unknown_sender_followup: must be one of new_ticket, internal",
        ),
        ({"daemon": {"event_loop": "trio"}}, "daemon.event_loop: must be one of auto"),
        ({"daemon": {"log_level": "LOUD"}}, "daemon.log_level: must be one of DEBUG"),
        (
            {"mail_accounts": [{"type": "exchange", "host": "h", "user": "u"}]},
            "mail_accounts[0].type: must be one of imap, imaps, imap+starttls, pop3, pop3s",
        ),
        (
            {"mail_accounts": [{"type": "imap", "host": "h", "user": "u", "mode": "copy"}]},
            "mail_accounts[0].mode: must be one of keep, move, delete",
        ),
        (
            {"auto_responses": [{"queue": "Raw", "type": "auto-reply", "subject": "s"}]},
            "auto_responses[0].type: must be one of auto reply, auto reply/new ticket",
        ),
        ({"smtp": {"max_message_size": 0}}, "smtp.max_message_size: must be at least 1"),
        ({"postmaster": {"lease_seconds": 0}}, "postmaster.lease_seconds: must be greater than 0"),
        ({"smtp": {"listen": ["localhost"]}}, "smtp.listen[0]: 'localhost' is not host:port"),
        ({"web": {"listen": "127.0.0.1:http"}}, "web.listen: '127.0.0.1:http': port"),
        (
            {"authentication": {"dns_resolver": "/run/dns.sock"}},
            "authentication.dns_resolver: must be host:port",
        ),
        (
            {"loop_protection": {"no_auto_response_pattern": "(unclosed"}},
            "loop_protection.no_auto_response_pattern: is not a valid regular expression",
        ),
        ({"database": {"schema": "pytrs; DROP"}}, "database.schema: must be empty or a plain SQL"),
        (
            {"system_addresses": [{"address": "support", "queue": "Raw"}]},
            "system_addresses[0].address: must be an e-mail address",
        ),
    ],
)
def test_bad_values_are_errors(data: dict[str, Any], error: str) -> None:
    assert only_error(data).startswith(error)


def test_log_level_is_accepted_in_any_case() -> None:
    assert parse_config({"daemon": {"log_level": "debug"}}).daemon.log_level == "DEBUG"
    assert DaemonConfig(log_level="warning").log_level == "WARNING"


@pytest.mark.parametrize(
    ("array", "entry", "key"),
    [
        ("queues", {"follow_up": "reject"}, "queues[0].name"),
        ("system_addresses", {"address": "a@example.com"}, "system_addresses[0].queue"),
        ("mail_accounts", {"type": "imap", "user": "u"}, "mail_accounts[0].host"),
        ("agents", {"email": "a@example.com"}, "agents[0].login"),
        ("dkim_keys", {"domain": "example.com", "selector": "s1"}, "dkim_keys[0].private_key_file"),
        ("auto_responses", {"queue": "Raw", "type": "auto reply"}, "auto_responses[0].subject"),
    ],
)
def test_missing_required_keys_are_errors(array: str, entry: dict[str, Any], key: str) -> None:
    assert only_error({array: [entry]}) == f"{key}: required key missing"


def test_empty_names_are_errors() -> None:
    assert only_error({"queues": [{"name": " "}]}) == "queues[0].name: must not be empty"


# --- cross-checks ----------------------------------------------------------------------------


def test_references_to_declared_and_builtin_queues_are_accepted() -> None:
    config = parse_config(
        {
            "queues": [{"name": "Support"}],
            "system_addresses": [
                {"address": "support@example.com", "queue": "Support"},
                {"address": "postmaster@example.com", "queue": "Postmaster"},
            ],
            "agents": [{"login": "a", "email": "a@example.com", "queues": ["Support", "Misc"]}],
            "auto_responses": [{"queue": "Support", "type": "auto reply", "subject": "Re"}],
            "mail_accounts": [{"type": "imaps", "host": "h", "user": "u", "queue": "Junk"}],
            "postmaster": {"default_queue": "Support"},
        }
    )
    assert config.queue_names() == ("Postmaster", "Raw", "Junk", "Misc", "Support")


def test_references_to_unknown_queues_are_errors() -> None:
    errors = errors_of(
        {
            "queues": [{"name": "Support"}],
            "system_addresses": [{"address": "s@example.com", "queue": "Suport"}],
            "agents": [{"login": "a", "email": "a@example.com", "queues": ["Support", "Sales"]}],
            "auto_responses": [{"queue": "Sales", "type": "auto reply", "subject": "Re"}],
            "mail_accounts": [
                {"type": "imap", "host": "h", "user": "u"},
                {"type": "imap", "host": "h", "user": "v", "queue": "Sales"},
            ],
            "postmaster": {"default_queue": "Inbox"},
        }
    )
    assert [error.split(":")[0] for error in errors] == [
        "postmaster.default_queue",
        "system_addresses[0].queue",
        "agents[0].queues[1]",
        "auto_responses[0].queue",
        "mail_accounts[1].queue",
    ]
    assert "unknown queue 'Suport'" in errors[1]


def test_a_queue_with_another_error_does_not_also_cause_unknown_queue_errors() -> None:
    errors = errors_of(
        {
            "queues": [{"name": "Support", "follow_up": "maybe"}],
            "system_addresses": [{"address": "s@example.com", "queue": "Support"}],
        }
    )
    assert errors == [
        "queues[0].follow_up: must be one of possible, reject, new_ticket, not 'maybe'"
    ]


def test_duplicates_are_errors() -> None:
    errors = errors_of(
        {
            "queues": [{"name": "Support"}, {"name": "Sales"}, {"name": "Support"}],
            "system_addresses": [
                {"address": "support@example.com", "queue": "Support"},
                {"address": "Support@Example.COM", "queue": "Sales"},
            ],
            "agents": [
                {"login": "jdoe", "email": "jdoe@example.com"},
                {"login": "jdoe", "email": "john@example.com"},
            ],
            "dkim_keys": [
                {"domain": "example.com", "selector": "s1", "private_key_file": "a"},
                {"domain": "Example.com", "selector": "s1", "private_key_file": "b"},
            ],
        }
    )
    assert [error.split(":")[0] for error in errors] == [
        "queues[2].name",
        "system_addresses[1].address",
        "agents[1].login",
        "dkim_keys[1].selector",
    ]
    assert "first at queues[0].name" in errors[0]


def test_mail_account_conflicts_are_errors() -> None:
    errors = errors_of(
        {
            "mail_accounts": [
                {"type": "imap", "host": "h", "user": "u", "password": "p", "password_file": "f"},
                {"type": "pop3", "host": "h", "user": "v"},
                {"type": "pop3s", "host": "h", "user": "w", "mode": "delete"},
            ]
        }
    )
    assert [error.split(":")[0] for error in errors] == [
        "mail_accounts[0].password_file",
        "mail_accounts[1].mode",
    ]


def test_trusted_sources_must_be_known() -> None:
    account = {"type": "imap", "host": "mail.example.com", "user": "support", "name": "support"}
    config = parse_config(
        {"mail_accounts": [account], "postmaster": {"trusted_sources": ["pipe", "lmtp", "support"]}}
    )
    assert config.postmaster.trusted_sources == ("pipe", "lmtp", "support")
    error = only_error({"postmaster": {"trusted_sources": ["pipe", "imap"]}})
    assert error.startswith("postmaster.trusted_sources[1]: 'imap' is neither")


def test_an_agent_may_not_use_a_system_address() -> None:
    error = only_error(
        {
            "system_addresses": [{"address": "support@example.com", "queue": "Raw"}],
            "agents": [{"login": "a", "email": "Support@example.com"}],
        }
    )
    assert error.startswith("agents[0].email:")


# --- the dataclasses themselves --------------------------------------------------------------


def test_config_objects_are_frozen() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.smtp.listen = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        QueueConfig(name="Q").name = "R"  # type: ignore[misc]


def test_system_addresses_are_stored_lower_cased() -> None:
    assert SystemAddressConfig(address="Support@Example.COM", queue="Raw").address == (
        "support@example.com"
    )


def test_mail_account_defaults_for_port_and_name() -> None:
    accounts = [
        MailAccountConfig(type=kind, host="mx", user="u")
        for kind in ("imap", "imaps", "imap+starttls", "pop3", "pop3s")
    ]
    assert [account.port for account in accounts] == [143, 993, 143, 110, 995]
    assert accounts[0].name == "u@mx"
    named = MailAccountConfig(type="imap", host="mx", user="u", port=1143, name="support")
    assert (named.port, named.name) == (1143, "support")


def test_mail_account_password_is_not_in_its_repr() -> None:
    assert "s3cret" not in repr(
        MailAccountConfig(type="imap", host="h", user="u", password="s3cret")
    )


def test_resolve_password(tmp_path: Path) -> None:
    secret = write(tmp_path / "imap.pw", "  s3cret\n")
    from_file = MailAccountConfig(type="imap", host="h", user="u", password_file=str(secret))
    assert from_file.resolve_password() == "s3cret"
    assert MailAccountConfig(type="imap", host="h", user="u", password="pw").resolve_password() == (
        "pw"
    )
    assert MailAccountConfig(type="imap", host="h", user="u").resolve_password() == ""
    missing = MailAccountConfig(type="imap", host="h", user="u", password_file=str(tmp_path / "x"))
    with pytest.raises(OSError):
        missing.resolve_password()


def test_config_error_survives_pickling() -> None:
    error = ConfigError(["a.b: bad", "c: worse"], "site.toml")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.errors, copy.source, str(copy)) == (error.errors, error.source, str(error))
    assert ConfigError("x: y").errors == ["x: y"]


# --- environment overrides ---------------------------------------------------------------


def test_environment_overrides_scalars_of_every_type() -> None:
    config = parse_config(
        {"smtp": {"max_message_size": 1000}, "database": {"echo": True}},
        environ={
            "PYTRS_DATABASE_URL": "postgresql+asyncpg://pytrs@db/pytrs",
            "PYTRS_DATABASE_ECHO": "no",
            "PYTRS_SMTP_MAX_MESSAGE_SIZE": "2048",
            "PYTRS_SMTP_LISTEN": "127.0.0.1:25, [::1]:25",
            "PYTRS_SMTP_LMTP_LISTEN": "",
            "PYTRS_SMTP_COMMIT_DELAY_MS": "0.5",
            "PYTRS_TICKET_CHECK_SYSTEM_ID": "FALSE",
            "PYTRS_POSTMASTER_TRUSTED_SOURCES": "pipe,smtp",
        },
    )
    assert config.database.url == "postgresql+asyncpg://pytrs@db/pytrs"
    assert config.database.echo is False
    assert config.smtp.max_message_size == 2048
    assert config.smtp.listen == ("127.0.0.1:25", "[::1]:25")
    assert config.smtp.lmtp_listen == ()
    assert config.smtp.commit_delay_ms == 0.5
    assert config.ticket.check_system_id is False
    assert config.postmaster.trusted_sources == ("pipe", "smtp")


def test_environment_section_names_with_underscores_match() -> None:
    config = parse_config(
        {},
        environ={
            "PYTRS_LOOP_PROTECTION_MAX_AUTO_RESPONSES_PER_ADDRESS_PER_DAY": "3",
            "PYTRS_AUTHENTICATION_TRUSTED_AUTHSERV_IDS": "mx.example.com",
        },
    )
    assert config.loop_protection.max_auto_responses_per_address_per_day == 3
    assert config.authentication.trusted_authserv_ids == ("mx.example.com",)


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "site.toml", '[web]\nlisten = "127.0.0.1:9000"\n')
    config = load_config(path, environ={"PYTRS_WEB_LISTEN": ""})
    assert config.web.listen == ""


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PYTRS_SMTP_MAX_MESSAGE_SIZE", "25M"),
        ("PYTRS_DATABASE_ECHO", "maybe"),
        ("PYTRS_DAEMON_DRAIN_SECONDS", "nan"),
    ],
)
def test_bad_environment_value_names_the_variable(variable: str, value: str) -> None:
    assert only_error({}, {variable: value}).startswith(f"{variable}: cannot be read as")


def test_invalid_environment_value_names_key_and_variable() -> None:
    error = only_error({}, {"PYTRS_TICKET_SUBJECT_FORMAT": "Middle"})
    assert error.startswith("ticket.subject_format (from PYTRS_TICKET_SUBJECT_FORMAT): must be")


def test_invalid_item_of_an_environment_list_names_the_variable() -> None:
    error = only_error({}, {"PYTRS_SMTP_LISTEN": "127.0.0.1:25,localhost"})
    assert error.startswith("smtp.listen[1] (from PYTRS_SMTP_LISTEN): 'localhost' is not")


def test_unrelated_environment_variables_are_ignored() -> None:
    environ = {
        "PYTRS_TEST_DATABASE_URL": "postgresql+asyncpg://test@db/test",
        "PYTRS_CONFIG": "/nonexistent.toml",
        "HOME": "/root",
    }
    assert parse_config({}, environ) == Config()


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("PYTRS_SMTP_LISTN", "PYTRS_SMTP_LISTEN"),
        ("PYTRS_SMPT_LISTEN", "PYTRS_SMTP_LISTEN"),
        ("PYTRS_outbound_batch_size", "PYTRS_OUTBOUND_BATCH_SIZE"),
        ("PYTRS_NOTHING_LIKE_IT_AT_ALL", ""),
    ],
)
def test_unknown_environment_variable_is_an_error(variable: str, suggestion: str) -> None:
    """As an unknown key in the file is: a misspelt override must not be silently ignored."""
    error = only_error({}, {variable: "1"})
    assert error.startswith(f"{variable}: names no configuration key")
    assert suggestion in error


def _numeric_fields() -> list[tuple[str, str, type]]:
    """(table or array, key, int or float) of every number in the model."""
    found = []
    for name, cls in {**SECTIONS, **ARRAYS}.items():
        hints = typing.get_type_hints(cls)
        found += [(name, f.name, hints[f.name]) for f in dataclasses.fields(cls)]
    return [(name, key, hint) for name, key, hint in found if hint in (int, float)]


def _minimal_entry(array: str) -> dict[str, Any]:
    return {
        "queues": {"name": "Raw"},
        "system_addresses": {"address": "a@example.com", "queue": "Raw"},
        "mail_accounts": {"type": "imap", "host": "mail", "user": "u"},
        "agents": {"login": "a", "email": "agent@example.com"},
        "dkim_keys": {"domain": "example.com", "selector": "s", "private_key_file": "k"},
        "auto_responses": {"queue": "Raw", "type": "auto reply", "subject": "s"},
        "external_ticket_numbers": {"name": "x", "number_pattern": "(\\d+)", "dynamic_field": "X"},
        "slas": {"name": "gold"},
        "calendars": {"name": "office"},
    }[array]


@pytest.mark.parametrize(("where", "key", "hint"), _numeric_fields())
@pytest.mark.parametrize("huge", [10**23, 1e300, -1])
def test_every_number_has_a_range(where: str, key: str, hint: type, huge: float) -> None:
    """1e300 seconds overflows a timedelta, 10**23 rows a SQL LIMIT: every key is bounded."""
    if hint is int and isinstance(huge, float):
        huge = 10**23  # a float for an integer key is a type error, tested elsewhere
    if where in ARRAYS:
        data: dict[str, Any] = {where: [{**_minimal_entry(where), key: huge}]}
        dotted_key = f"{where}[0].{key}"
    else:
        data = {where: {key: huge}}
        dotted_key = f"{where}.{key}"
    errors = errors_of(data)
    assert any(e.startswith(f"{dotted_key}: must be") for e in errors), errors


@pytest.mark.parametrize(
    "url",
    [
        "postgres://pytrs:secret@db/pytrs",
        "postgresql://db/pytrs",
        "sqlite:///var/pytrs.db",
        "mysql+aiomysql://db/pytrs",
        "pytrs.db",
        "postgresql+asyncpg://db:99999/pytrs",
    ],
)
def test_unusable_database_url_names_the_forms_that_work(url: str) -> None:
    error = only_error({"database": {"url": url}})
    assert error.startswith("database.url: ")
    assert "secret" not in error  # the URL may hold a password
    if "99999" not in url:
        assert "postgresql+asyncpg://" in error and "sqlite+aiosqlite:///" in error


def test_usable_database_urls() -> None:
    for url in ("postgresql+asyncpg://pytrs@db:5432/pytrs", "sqlite+aiosqlite:///x.db"):
        assert parse_config({"database": {"url": url}}).database.url == url


def test_parse_config_ignores_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTRS_WEB_LISTEN", "")
    assert parse_config({}).web.listen == "127.0.0.1:8080"


# --- finding the file ----------------------------------------------------------------------


@pytest.fixture
def three_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An explicit file, a $PYTRS_CONFIG file and ./pytrs.toml, each with its own web port."""
    monkeypatch.chdir(tmp_path)
    files = {}
    for name, port in (("explicit.toml", 1), ("from-env.toml", 2), ("pytrs.toml", 3)):
        files[name] = write(tmp_path / name, f'[web]\nlisten = "127.0.0.1:{port}"\n')
    return files


def test_explicit_path_comes_first(three_files: dict[str, Path]) -> None:
    environ = {"PYTRS_CONFIG": str(three_files["from-env.toml"])}
    config = load_config(three_files["explicit.toml"], environ)
    assert (config.web.listen, config.source) == ("127.0.0.1:1", str(three_files["explicit.toml"]))


def test_pytrs_config_comes_second(three_files: dict[str, Path]) -> None:
    config = load_config(environ={"PYTRS_CONFIG": str(three_files["from-env.toml"])})
    assert config.web.listen == "127.0.0.1:2"


def test_pytrs_toml_in_the_working_directory_comes_third(three_files: dict[str, Path]) -> None:
    config = load_config(environ={"PYTRS_CONFIG": ""})
    assert (config.web.listen, config.source) == ("127.0.0.1:3", "pytrs.toml")


def test_os_environ_is_used_by_default(
    three_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTRS_CONFIG", str(three_files["from-env.toml"]))
    monkeypatch.setenv("PYTRS_DAEMON_LOG_LEVEL", "ERROR")
    config = load_config()
    assert (config.web.listen, config.daemon.log_level) == ("127.0.0.1:2", "ERROR")


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "absent.toml", environ={})


def test_missing_pytrs_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent.toml \(from PYTRS_CONFIG\)"):
        load_config(environ={"PYTRS_CONFIG": str(tmp_path / "absent.toml")})


def test_toml_syntax_error_names_the_file_and_the_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.toml", '[smtp]\nlisten = "127.0.0.1:25\n[web]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.source == str(path)
    [error] = info.value.errors
    # tomllib's own message, with its position, follows the file name.
    assert error.startswith(f"{path}: TOML syntax error: ")
    assert "(at line 2, column" in error
    assert str(info.value) == f"invalid configuration: {info.value.errors[0]}"


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path, environ={})


def test_errors_in_a_file_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "site.toml", "[smtp]\nlistn = []\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.errors == ["smtp.listn: unknown key (did you mean 'listen'?)"]
    assert str(path) in str(info.value)


def test_agents_are_built(tmp_path: Path) -> None:
    path = write(
        tmp_path / "site.toml",
        '[[agents]]\nlogin = "jdoe"\nemail = "jdoe@example.com"\nqueues = ["Raw"]\n',
    )
    config = load_config(path, environ={})
    assert config.agents == (AgentConfig(login="jdoe", email="jdoe@example.com", queues=("Raw",)),)


# --- listen addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("127.0.0.1:2525", ("127.0.0.1", 2525)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:25", ("::1", 25)),
        ("[::]:65535", ("::", 65535)),
        ("/run/pytrs/lmtp.sock", "/run/pytrs/lmtp.sock"),
        ("unix:var/lmtp.sock", "var/lmtp.sock"),
        ("unix:/run/lmtp.sock", "/run/lmtp.sock"),
    ],
)
def test_listen_address(spec: str, expected: tuple[str, int] | str) -> None:
    assert listen_address(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "localhost",
        ":25",
        "::1:25",
        "[::1]",
        "[nonsense]:25",
        "host:",
        "host:65536",
        "host:-1",
        "host:２５",
        "unix:",
        "ho st:25",
    ],
)
def test_bad_listen_address(spec: str) -> None:
    with pytest.raises(ValueError):
        listen_address(spec)


def test_per_address_limit_is_bounded_too() -> None:
    error = only_error({"loop_protection": {"per_address_limits": [f"vip@example.com={10**23}"]}})
    assert error.startswith("loop_protection.per_address_limits[0]: limit must be at most")


# --- escalation targets (issue 14) ---------------------------------------------------------

OFFICE_CALENDAR = {"name": "office", "hours": {"mon": ["08:00-17:00"]}}


def test_queues_and_slas_name_declared_calendars() -> None:
    errors = errors_of(
        {
            "calendars": [OFFICE_CALENDAR],
            "queues": [
                {"name": "Support", "calendar": "office"},
                {"name": "Sales", "calendar": "Office"},
                {"name": "Billing"},  # "": 24/7 in [scheduler] timezone
            ],
            "slas": [{"name": "gold", "calendar": "ofice"}, {"name": "silver"}],
        }
    )
    assert [error.split(":")[0] for error in errors] == ["queues[1].calendar", "slas[0].calendar"]
    assert "unknown calendar 'Office'; declare it in [[calendars]] (one of office)" in errors[0]


def test_a_calendar_with_another_error_is_not_also_unknown() -> None:
    errors = errors_of(
        {
            "calendars": [{**OFFICE_CALENDAR, "holidays_country": 49}],
            "queues": [{"name": "Support", "calendar": "office"}],
        }
    )
    assert [error.split(":")[0] for error in errors] == ["calendars[0].holidays_country"]


def test_sla_names_are_unique() -> None:
    errors = errors_of({"slas": [{"name": "gold"}, {"name": "silver"}, {"name": "gold"}]})
    assert errors == ["slas[2].name: duplicate SLA name 'gold' (first at slas[0].name)"]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "europe/berlin", "Europe", "", "/etc/localtime"])
def test_scheduler_timezone_must_be_an_iana_zone(zone: str) -> None:
    error = only_error({"scheduler": {"timezone": zone}})
    assert (
        error == f"scheduler.timezone: unknown time zone {zone!r} (an IANA name like Europe/Berlin)"
    )


def test_scheduler_timezone_accepts_iana_zones() -> None:
    for zone in ("UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires"):
        assert parse_config({"scheduler": {"timezone": zone}}).scheduler.timezone == zone


def test_a_warning_share_without_a_budget_is_a_warning_not_an_error() -> None:
    config = parse_config(
        {
            "queues": [
                {"name": "Support", "notify_before_percent": 80},
                {"name": "Sales", "notify_before_percent": 80, "update_minutes": 60},
            ],
            "slas": [{"name": "gold", "notify_before_percent": 50}],
        }
    )
    assert config_warnings(config) == [
        "queues[0].notify_before_percent: 'Support' has no first_response, update or solution "
        "budget to warn about",
        "slas[0].notify_before_percent: 'gold' has no first_response, update or solution "
        "budget to warn about",
    ]
    assert config_warnings(parse_config({})) == []


@pytest.mark.parametrize(("cpus", "expected"), [({0}, 0), ({0, 1}, 1), ({0, 1, 2, 3}, 1)])
def test_worker_processes_default_to_one_where_there_is_a_second_cpu(
    monkeypatch: pytest.MonkeyPatch, cpus: set[int], expected: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cpus, raising=False)
    assert parse_config({}, environ={}).postmaster.processes == expected
    # What the file or the environment says wins.
    assert parse_config({"postmaster": {"processes": 0}}, environ={}).postmaster.processes == 0
