"""Reply tokens: how an agent's answer to a notification proves that pytrs asked that agent.

Place in the flow: the agent notifications (issue 6, item 6) put a token made with
``ReplyTokens.make`` into their Reply-To (``reply_address``: ``support+r<token>@example.com``)
and their Message-ID (``notification_message_id``: ``<pytrs.<token>.<random>@example.com>``).
When the agent answers from their own mail client, the token comes back in the recipient
address and in In-Reply-To/References; ``find_reply_tokens`` reads it there and
``ReplyTokens.check`` tells ``authentication.authenticity`` whether it authenticates the mail.
Pure functions; the only I/O is reading the key in ``ReplyTokens.from_config``.

A token is a version byte, an expiry (hours since the epoch) and an HMAC-SHA256, truncated to
96 bits, over that expiry, the ticket number and the agent's login, under a key only pytrs
knows. The ticket number and the login are not in the token: the verifier supplies them (the
ticket the mail was routed to, the agent its From address belongs to), so a token answers
exactly one question — "did pytrs send this agent a notification about this ticket, recently?"
— and a token for another ticket or another agent fails like a forged one. 16 bytes in
lower-case base32 make 26 characters: short enough for an address local part (RFC 5321 allows
64), and immune to MTAs and mail clients that change the case of addresses.

What a token cannot do: it is a bearer secret. Whoever sees the agent's answer with its
recipients or its In-Reply-To (someone the agent copies in) can write as that agent about that
ticket until the token expires. Hence the short default lifetime (``reply_token_days``), and
DKIM or a trusted Authentication-Results header are the stronger proofs. Composing the mail
pytrs relays to the customer must never copy the agent's recipients or threading headers.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pytrs.config import Config, ConfigError
from pytrs.config.secrets import MIN_SECRET_BYTES, loop_secret_from_config

TOKEN_LENGTH = 26  # base32 characters of 16 bytes, without padding
MAX_LOCAL_PART = 64  # RFC 5321 §4.5.3.1.1
_VERSION = 1
_MAC_BYTES = 12  # 96 bits: forging one means 2^96 guesses, each a mail to pytrs
_DOMAIN_SEPARATION = b"pytrs-reply-v1\0"  # the loop marker may share the key; its MACs differ
_HOUR = 3600
# A token as it appears in mail: after "+r" in a local part, or after "pytrs." in a Message-ID.
# Case-insensitive because MTAs and clients may upper-case addresses.
_TOKEN = f"[a-z2-7]{{{TOKEN_LENGTH}}}"
_IN_ADDRESS = re.compile(rf"\+r({_TOKEN})@", re.IGNORECASE)
_IN_MESSAGE_ID = re.compile(rf"<pytrs\.({_TOKEN})\.[0-9a-z]+@", re.IGNORECASE)
# Reading mail is bounded work whatever it holds: this many distinct tokens at most.
MAX_TOKENS = 8


class TokenCheck(enum.Enum):
    """What ``ReplyTokens.check`` found; only VALID authenticates."""

    VALID = "valid"
    MALFORMED = "malformed"
    # Forged, tampered with, made under another key, or for another ticket or agent: a MAC
    # cannot tell these apart, and a reason that did would help a forger.
    MISMATCH = "not for this ticket and agent"
    EXPIRED = "expired"


def make_reply_token(secret: bytes, tn: str, agent_login: str, expires: datetime) -> str:
    """A token that authenticates `agent_login`'s mail about ticket `tn` until `expires`.

    Raises ValueError for a short secret or an expiry outside 1970..3883.
    """
    _check_secret(secret)
    hours = -(-int(expires.timestamp()) // _HOUR)  # rounded up: never shorter than asked
    if not 0 <= hours < 1 << 24:
        raise ValueError(f"reply token expiry out of range: {expires.isoformat()}")
    payload = bytes((_VERSION,)) + hours.to_bytes(3, "big")
    return _encode(payload + _mac(secret, payload, tn, agent_login))


def check_reply_token(
    secrets_: bytes | Sequence[bytes],
    token: str,
    tn: str,
    agent_login: str,
    now: datetime | None = None,
) -> TokenCheck:
    """Whether `token` was made with one of `secrets_` for `tn` and `agent_login`, unexpired.

    Several secrets allow a key rotation. Never raises: the token comes from mail.
    """
    data = _decode(token)
    if data is None or data[0] != _VERSION:
        return TokenCheck.MALFORMED
    payload, mac = data[:4], data[4:]
    keys = [secrets_] if isinstance(secrets_, bytes) else list(secrets_)
    expected = [_mac(key, payload, tn, agent_login) for key in keys if len(key) >= MIN_SECRET_BYTES]
    # Every candidate is compared, so the time taken says nothing about which key matched.
    if not sum(hmac.compare_digest(mac, candidate) for candidate in expected):
        return TokenCheck.MISMATCH
    # The MAC is checked first, so that only pytrs's own tokens are ever called "expired".
    expires = int.from_bytes(payload[1:4], "big") * _HOUR
    if (now or datetime.now(UTC)).timestamp() >= expires:
        return TokenCheck.EXPIRED
    return TokenCheck.VALID


def token_expiry(token: str) -> datetime | None:
    """When a well-formed `token` expires (unauthenticated: for logs only), else None."""
    data = _decode(token)
    if data is None:
        return None
    return datetime.fromtimestamp(int.from_bytes(data[1:4], "big") * _HOUR, UTC)


def reply_address(system_address: str, token: str) -> str:
    """``local+r<token>@domain`` of `system_address`: the Reply-To of a notification.

    Raises ValueError when `token` is not a token or the local part would pass 64 characters.
    """
    _check_token(token)
    local, at, domain = system_address.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"not an address: {system_address!r}")
    tagged = f"{local}+r{token}"
    if len(tagged) > MAX_LOCAL_PART:
        raise ValueError(
            f"{system_address}: a reply token makes the local part {len(tagged)} characters, "
            f"more than {MAX_LOCAL_PART}; use a system address with a shorter local part"
        )
    return f"{tagged}@{domain}"


def notification_message_id(token: str, domain: str) -> str:
    """A fresh Message-ID under `domain` that carries `token`: ``<pytrs.<token>.<random>@…>``.

    Raises ValueError when `token` is not a token or `domain` is empty.
    """
    _check_token(token)
    if not domain or any(c in domain for c in "<>@ \t\r\n"):
        raise ValueError(f"not a domain: {domain!r}")
    return f"<pytrs.{token}.{secrets.token_hex(8)}@{domain.lower()}>"


def find_reply_tokens(addresses: Iterable[str], message_ids: Iterable[str]) -> tuple[str, ...]:
    """The distinct tokens in recipient `addresses` and in `message_ids` (In-Reply-To,
    References), addresses first, at most MAX_TOKENS, lower-cased. Never raises."""
    found: dict[str, None] = {}
    for pattern, values in ((_IN_ADDRESS, addresses), (_IN_MESSAGE_ID, message_ids)):
        for value in values:
            for match in pattern.finditer(value):
                found.setdefault(match.group(1).lower())
                if len(found) >= MAX_TOKENS:
                    return tuple(found)
    return tuple(found)


@dataclass(frozen=True, slots=True)
class ReplyTokens:
    """The reply-token key and lifetime from the configuration; disabled without a key."""

    secret: bytes = field(default=b"", repr=False)
    lifetime: timedelta = timedelta(days=14)
    source: str = ""  # which configuration key the secret came from, for messages

    @classmethod
    def from_config(cls, config: Config) -> ReplyTokens:
        """Read the key: ``[authentication] reply_token_secret_file``, else the outbox's
        loop secret, else none (tokens disabled).

        Raises ConfigError naming the key when a configured one is unreadable or too short.
        """
        auth = config.authentication
        lifetime = timedelta(days=auth.reply_token_days)
        if auth.reply_token_secret_file:
            key = "authentication.reply_token_secret_file"
            try:
                with open(auth.reply_token_secret_file, "rb") as file:
                    secret = file.read().strip()
            except OSError as exc:
                raise ConfigError(f"{key}: cannot read: {exc.strerror or exc}") from exc
            if len(secret) < MIN_SECRET_BYTES:
                raise ConfigError(f"{key}: must hold at least {MIN_SECRET_BYTES} bytes")
            return cls(secret, lifetime, key)
        out = config.outbound
        if not (out.loop_secret or out.loop_secret_file):
            return cls(b"", lifetime, "")
        # The loop marker's checks and messages apply; the MACs are domain-separated.
        return cls(loop_secret_from_config(out), lifetime, "outbound.loop_secret")

    @property
    def enabled(self) -> bool:
        return bool(self.secret)

    def make(self, tn: str, agent_login: str, now: datetime | None = None) -> str:
        """A token for `agent_login` about ticket `tn`, valid for the configured lifetime.

        Raises ValueError when tokens are disabled (no key configured).
        """
        if not self.enabled:
            raise ValueError(
                "reply tokens are disabled: set authentication.reply_token_secret_file "
                "(or outbound.loop_secret_file)"
            )
        return make_reply_token(
            self.secret, tn, agent_login, (now or datetime.now(UTC)) + self.lifetime
        )

    def check(
        self, token: str, tn: str, agent_login: str, now: datetime | None = None
    ) -> TokenCheck:
        """``check_reply_token`` under the configured key; MISMATCH when disabled."""
        if not self.enabled:
            return TokenCheck.MISMATCH
        return check_reply_token(self.secret, token, tn, agent_login, now)


def _mac(secret: bytes, payload: bytes, tn: str, agent_login: str) -> bytes:
    # Each value with its length in front, so that no two (tn, login) pairs hash alike.
    data = bytearray(_DOMAIN_SEPARATION + payload)
    for value in (tn, agent_login):
        encoded = value.encode("utf-8", "surrogatepass")
        data += len(encoded).to_bytes(4, "big") + encoded
    return hmac.new(secret, bytes(data), hashlib.sha256).digest()[:_MAC_BYTES]


def _encode(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _decode(token: str) -> bytes | None:
    if len(token) != TOKEN_LENGTH or not token.isascii():
        return None
    try:
        data = base64.b32decode(token.upper() + "=" * 6)
    except (binascii.Error, ValueError):
        return None
    # 26 characters carry 130 bits; the last two must be zero, else two spellings of one
    # token would both pass.
    return data if _encode(data) == token.lower() else None


# What `_decode` accepts, as a pattern: 26 base32 characters (any case) whose last one leaves
# the two bits past the 128th zero. Checked on every notification pytrs composes, where
# decoding the token it has just made was a tenth of the work.
_TOKEN_SHAPE = re.compile(r"[a-z2-7]{25}[aeimquy4]", re.IGNORECASE | re.ASCII)


def _check_token(token: str) -> None:
    if not _TOKEN_SHAPE.fullmatch(token):
        raise ValueError(f"not a reply token: {token!r}")


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the reply token key must be at least {MIN_SECRET_BYTES} bytes")
