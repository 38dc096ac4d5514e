"""What the SMTP/LMTP listeners read for each new session: TLS context, require_tls, AUTH users.

Place in the flow: built from `[smtp] tls_cert_file`, `tls_key_file`, `require_tls` and
`auth_users_file` when the daemon starts its listeners (and by `pytrs config check`, which
loads the same files), then read by the server factory of every listener for each connection
it accepts. `reload(config)` (SIGHUP) builds everything new first and swaps it in only when all
of it loaded: new connections get the new certificate and users, sessions already in TLS keep
the context they started with, and a file that fails keeps the running settings.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from pytrs.config import Config, ConfigError
from pytrs.gateway.smtp_auth import SmtpUsers, UsersFileError, read_users


@dataclass(frozen=True, slots=True)
class ListenerSecurity:
    """One consistent set of settings, as a session reads it when it starts."""

    context: ssl.SSLContext | None = None
    require_tls: bool = False
    users: SmtpUsers | None = None


class ListenerTls:
    """The listeners' current `ListenerSecurity`, replaced whole on reload."""

    def __init__(self, config: Config) -> None:
        """Raises ConfigError naming the key of a file that cannot be used."""
        self.current = _load(config, None)

    def reload(self, config: Config) -> None:
        """Take the settings of `config`; on ConfigError the running ones stay."""
        self.apply(self.prepare(config))

    def prepare(self, config: Config) -> ListenerSecurity:
        """The settings of `config`, built but not in use (reads files: fine in a thread).

        Raises ConfigError naming the key; the AUTH throttle carries over.
        """
        return _load(config, self.current.users)

    def apply(self, security: ListenerSecurity) -> None:
        """Use `security` for every session that starts from now on; cannot fail."""
        self.current = security


def _load(config: Config, users: SmtpUsers | None) -> ListenerSecurity:
    smtp = config.smtp
    if not (smtp.tls_cert_file and smtp.tls_key_file):
        # The configuration check refuses require_tls or a users file without both files.
        return ListenerSecurity()
    context = tls_context(smtp.tls_cert_file, smtp.tls_key_file)
    if not smtp.auth_users_file:
        return ListenerSecurity(context, smtp.require_tls)
    try:
        names = read_users(smtp.auth_users_file)
    except OSError as exc:
        raise ConfigError(
            f"smtp.auth_users_file: cannot read {smtp.auth_users_file}: {exc.strerror or exc}"
        ) from None
    except UsersFileError as exc:
        raise ConfigError(f"smtp.auth_users_file: {smtp.auth_users_file} {exc}") from None
    new = users.replaced(names) if users is not None else SmtpUsers(names)
    return ListenerSecurity(context, smtp.require_tls, new)


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context (TLS 1.2 or later) with this certificate and key.

    Raises ConfigError naming `smtp.tls_cert_file` or `smtp.tls_key_file`: unreadable, not
    PEM, an encrypted key (nobody is there to type its passphrase), a key of another
    certificate.
    """
    for key, path in (("smtp.tls_cert_file", cert_file), ("smtp.tls_key_file", key_file)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ConfigError(f"{key}: cannot read {path}: {exc.strerror or exc}") from None
    try:
        # A context of its own, thrown away: whether the certificate alone parses, so that a
        # failure of the pair below can be blamed on the key.
        ssl.create_default_context().load_verify_locations(cafile=cert_file)
    except ssl.SSLError:
        raise ConfigError(f"smtp.tls_cert_file: {cert_file} holds no PEM certificate") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_passphrase)
    except _Encrypted:
        raise ConfigError(
            f"smtp.tls_key_file: {key_file} is encrypted; give the key without a passphrase "
            "(readable by the service user alone)"
        ) from None
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise ConfigError(
                f"smtp.tls_key_file: {key_file} is not the key of the certificate in {cert_file}"
            ) from None
        raise ConfigError(f"smtp.tls_key_file: {key_file} holds no PEM private key") from None
    return context


class _Encrypted(Exception):
    pass


def _no_passphrase() -> bytes:
    # Without a callback OpenSSL would ask for the passphrase on the terminal.
    raise _Encrypted
