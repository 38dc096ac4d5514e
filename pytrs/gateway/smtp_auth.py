"""SMTP AUTH on the listeners: the users file, PLAIN and LOGIN checked off the event loop.

Place in the flow: an SMTP/LMTP session (`gateway/smtp.py`) offers AUTH only after STARTTLS,
and only when `[smtp] auth_users_file` is set. A client that authenticated counts as a trusted
source for the mail of that session (its `X-PyTRS-*` control headers are honoured, as for a
listener named in `[postmaster] trusted_sources`), and its name is recorded with the peer of
each inbox row it delivered.

The users file holds lines of `name:hash`, the hash an argon2id one (`pytrs smtp
hash-password` prints such a line); `#` comments and blank lines are allowed. A verify takes
tens of milliseconds and 64 MiB, so it runs in a thread, at most two at a time. An unknown name
is verified against a dummy hash, so the time taken does not tell it apart from a wrong
password; every failure is answered only after a delay that grows with the failures of the
client's address (`AuthThrottle`), and the third failure of a session closes it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, Session
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

log = logging.getLogger(__name__)

AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"
AUTH_TOO_MANY = "421 4.7.0 Too many failed authentications, closing connection"
MECHANISMS = ("PLAIN", "LOGIN")
# Names go into the inbox row's peer column (100 characters) beside an IPv6 address and port.
NAME_RE = re.compile(r"[A-Za-z0-9._@+-]{1,48}")
MAX_PASSWORD = 1024  # argon2 would hash megabytes as well; nobody types that much
MAX_SESSION_FAILURES = 3
# Verifies at once, across every session of the process: each takes 64 MiB for a moment.
CONCURRENT_VERIFIES = 2

_hasher = PasswordHasher()


class UsersFileError(ValueError):
    """A users file that cannot be used; the message names the line, never a hash."""


def parse_users(text: str) -> dict[str, str]:
    """The `name: hash` pairs of a users file's text; raises UsersFileError naming the line."""
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, stored = line.partition(":")
        name = name.strip()
        if not colon:
            raise UsersFileError(f"line {number}: expected name:hash")
        if not NAME_RE.fullmatch(name):
            raise UsersFileError(f"line {number}: a name is 1 to 48 letters, digits or . _ @ + -")
        if name in users:
            raise UsersFileError(f"line {number}: {name} is listed twice")
        users[name] = _checked_hash(stored.strip(), number)
    return users


def _checked_hash(stored: str, number: int) -> str:
    try:
        if extract_parameters(stored).type.name != "ID":
            raise InvalidHashError
    except (InvalidHashError, ValueError):
        raise UsersFileError(
            f"line {number}: not an argon2id hash; make one with `pytrs smtp hash-password`"
        ) from None
    return stored


def read_users(path: str) -> dict[str, str]:
    """The users of the file at `path`; OSError if it cannot be read, UsersFileError if bad."""
    with open(path, encoding="utf-8", errors="replace") as file:
        return parse_users(file.read())


class AuthThrottle:
    """Failed AUTH per client address within a sliding window: each failure is answered after
    `base` seconds, doubling for every failure beyond `free`, up to `cap`."""

    def __init__(
        self,
        *,
        free: int = 3,
        base: float = 1.0,
        cap: float = 30.0,
        window: float = 900.0,
        max_keys: int = 10_000,
    ) -> None:
        self.free, self.base, self.cap, self.window = free, base, cap, window
        # Bounded: the addresses that failed longest ago are forgotten first.
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def failed(self, address: str, now: float) -> float:
        """Record a failure; returns how long to hold its answer."""
        times = self._failures.pop(address, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        times.append(now)
        while len(times) > self.free + 16:  # the delay stops growing at the cap anyway
            times.popleft()
        self._failures[address] = times
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)
        beyond = len(times) - self.free
        return min(self.cap, self.base * 2.0 ** max(0, beyond))

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


@dataclass(slots=True)
class SmtpUsers:
    """The accounts that may AUTH; a reload keeps the throttle and the verify slots."""

    users: dict[str, str]
    throttle: AuthThrottle = field(default_factory=AuthThrottle)
    verifies: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(CONCURRENT_VERIFIES)
    )

    def replaced(self, users: dict[str, str]) -> SmtpUsers:
        """The same throttle and slots with the users of a re-read file."""
        return SmtpUsers(users, self.throttle, self.verifies)

    async def verify(self, name: str, password: bytes, address: str) -> bool:
        """Whether `name` and `password` match the file; a failure returns after its delay."""
        stored = self.users.get(name)
        async with self.verifies:
            ok = await asyncio.to_thread(_verify, stored or await _dummy_hash(), password)
        if ok and stored is not None:
            self.throttle.succeeded(address)
            return True
        await asyncio.sleep(self.throttle.failed(address, time.monotonic()))
        return False


def _verify(stored: str, password: bytes) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


_dummy: str = ""


async def _dummy_hash() -> str:
    """A hash of a random password: what an unknown name is verified against."""
    global _dummy
    if not _dummy:
        _dummy = await asyncio.to_thread(_hasher.hash, secrets.token_urlsafe(16))
    return _dummy


@dataclass(frozen=True, slots=True)
class _Offered:
    """What aiosmtpd's PLAIN/LOGIN decoded, handed back to be checked asynchronously."""

    credentials: LoginPassword


class _QuietSession(Session):
    """aiosmtpd's session, without the "login_data is deprecated" warning its own AUTH logs
    on every success (it sets the attribute itself); we read `auth_data`."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class AuthMechanisms(SMTP):
    """PLAIN and LOGIN, with aiosmtpd's decoding, checked against `smtp_users`.

    aiosmtpd calls its authenticator synchronously; argon2 must not block the loop, so the
    synchronous step only hands the credentials back, and the mechanism awaits the check.
    """

    # Set by the server factory for each session; None offers no AUTH at all.
    smtp_users: SmtpUsers | None = None
    _auth_failures = 0

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    def _authenticate(self, mechanism: str, auth_data: Any) -> AuthResult:
        return AuthResult(success=False, handled=False, auth_data=_Offered(auth_data))

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._checked(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._checked(await super().auth_LOGIN(_, args))

    async def _checked(self, offered: AuthResult) -> AuthResult:
        if not isinstance(offered.auth_data, _Offered):
            return offered  # a syntax error or "*": already answered
        assert self.session is not None
        login, password = offered.auth_data.credentials
        address = _address(self.session.peer)
        name = login.decode("utf-8", "replace")
        users = self.smtp_users
        if (
            users is not None
            and len(password) <= MAX_PASSWORD
            and await users.verify(name, password, address)
        ):
            log.info("SMTP AUTH: %s authenticated from %s", name, address)
            return AuthResult(success=True, auth_data=name)
        self._auth_failures += 1
        # The name only when it is one the file could hold: no megabyte or control bytes.
        shown = name if NAME_RE.fullmatch(name) else "(not a valid name)"
        log.warning("SMTP AUTH failed for %s from %s", shown, address)
        if self._auth_failures >= MAX_SESSION_FAILURES:
            await self.push(AUTH_TOO_MANY)
            assert self.transport is not None
            self.transport.close()
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message=AUTH_INVALID)


def _address(peer: Any) -> str:
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "local")
