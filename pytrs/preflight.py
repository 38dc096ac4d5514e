"""What `pytrs run` checks before it opens the database; `pytrs config check` runs the same.

Place in the flow: after ``load_config`` (keys, types, ranges, cross-references) and before any
service is built. Checked here is everything that needs only the configuration and the files
it names: templates compile, body files and keys are readable and long enough, DKIM keys load,
the SMTP certificate and key load as a pair and the AUTH users file parses,
the DNS resolver's host resolves, the chosen event loop exists. One function for both commands,
so that a configuration `config check` accepts cannot be refused by `run`, or the other way
round. What needs the database (the schema version, an auto-response's sender address) is
checked by the daemon once it has connected.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from pytrs.authentication.dkim_verify import DkimVerifier
from pytrs.authentication.reply_token import ReplyTokens
from pytrs.config import Config, ConfigError
from pytrs.gateway.tls import ListenerTls
from pytrs.outbound.dkim import DkimSigner
from pytrs.responders.answers import notification_templates
from pytrs.responders.marker import loop_secret_from_config
from pytrs.responders.responses import specs_from_config
from pytrs.scheduler.notifications import compile_templates


def check_startup(config: Config) -> None:
    """Raise ConfigError listing every problem found, each naming its key; else return."""
    errors: list[str] = []
    for check in CHECKS:
        try:
            check(config)
        except ConfigError as exc:
            # Two checks reading one key (the loop secret) report it once.
            errors.extend(e for e in exc.errors if e not in errors)
    if errors:
        raise ConfigError(errors, config.source)


def _loop_secret(config: Config) -> None:
    # Unset is fine (the daemon keeps a generated one in the database); set but unusable is
    # not: the workers would otherwise start and send no mail at all.
    out = config.outbound
    if out.loop_secret or out.loop_secret_file:
        loop_secret_from_config(out)


def _files_read_later(config: Config) -> None:
    # Password, CA and client-secret files are read at each connection (so that a rotated
    # credential is picked up without a restart), which let a mistyped path start a daemon
    # that then retried a FileNotFoundError forever. Whether they open is checked now; their
    # contents stay the connection's business.
    named = [(f"outbound.{key}", getattr(config.outbound, key)) for key in _OUTBOUND_FILES]
    for index, account in enumerate(config.mail_accounts):
        named += [
            (f"mail_accounts[{index}].{key}", getattr(account, key)) for key in _ACCOUNT_FILES
        ]
    errors = []
    for key, path in named:
        if not path:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            errors.append(f"{key}: cannot read {path}: {exc.strerror or exc}")
    if errors:
        raise ConfigError(errors)


_OUTBOUND_FILES = ("password_file", "ca_file")
# Not oauth2_refresh_token_file: it seeds the database once and may be gone afterwards.
_ACCOUNT_FILES = ("password_file", "ca_file", "oauth2_client_secret_file")


def _dns_resolver(config: Config) -> None:
    auth = config.authentication
    DkimVerifier(auth.dns_resolver, auth.dkim_timeout_seconds)


def _event_loop(config: Config) -> None:
    if config.daemon.event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise ConfigError('daemon.event_loop: uvloop is not installed; use "auto" or "asyncio"')


# Each raises ConfigError naming its keys; the order is the order of the messages.
CHECKS: tuple[Callable[[Config], object], ...] = (
    _loop_secret,
    ReplyTokens.from_config,  # [authentication] reply_token_secret_file
    specs_from_config,  # [[auto_responses]] templates and body files
    notification_templates,  # [agent_mail] templates
    compile_templates,  # [scheduler] templates
    lambda config: DkimSigner.from_config(config.dkim_keys),
    _files_read_later,  # password, CA and client-secret files
    _dns_resolver,
    _event_loop,
    ListenerTls,  # [smtp] certificate, key and AUTH users file
)
