"""Sessions in signed cookies: who is signed in, since when, their CSRF token and flashes.

Place in the flow: `SessionMiddleware` (outside every page) reads the cookie, ends a session
that is idle, too old, or whose account changed (disabled, new password), loads the signed-in
agent's row for this request, and writes the cookie back when the session changed. Pages reach
both through `session_of(request)` and `access.current_user(request)`.

The cookie is signed (itsdangerous) with a key kept in `system_data`, so every daemon on one
database accepts the others' sessions and a restart logs nobody out. It is readable by its
holder, so it carries no secret: the password fingerprint is an HMAC under the signing key.
Each login gets a random session id (`sid`, never carried over from before the login, so a
session cannot be fixed in advance); logout records it as ended (``schema/web_sessions.py``),
which makes every copy of the cookie useless, and leaves the agent's other sessions alone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

COOKIE = "pytrs_session"
SEEN_REFRESH_SECONDS = 60.0  # last-seen is rewritten at most this often (one cookie per minute)
MAX_FLASHES = 5
MAX_FLASH_CHARS = 300  # a cookie holds about 4 kB; a flash is one line anyway
SESSION_KEY = "pytrs.session"  # where the middleware leaves the Session in the ASGI scope


@dataclass(slots=True)
class Session:
    """One browser's session; `user_id` None = not signed in (it may still hold a CSRF token
    for the login form, and flashes)."""

    user_id: int | None = None
    sid: str = ""  # random, new at every login; "" when not signed in
    login_time: float = 0.0
    seen: float = 0.0
    csrf: str = ""
    fingerprint: str = ""
    flashes: list[tuple[str, str]] = field(default_factory=list)
    dirty: bool = False  # to be written back (not part of the cookie)

    def csrf_token(self) -> str:
        """This session's CSRF token, made on first use."""
        if not self.csrf:
            self.csrf = secrets.token_urlsafe(24)
            self.dirty = True
        return self.csrf

    def add_flash(self, text: str, kind: str) -> None:
        if len(text) > MAX_FLASH_CHARS:
            text = text[: MAX_FLASH_CHARS - 1] + "…"
        self.flashes = [*self.flashes, (kind, text)][-MAX_FLASHES:]
        self.dirty = True

    def take_flashes(self) -> list[tuple[str, str]]:
        taken, self.flashes = self.flashes, []
        if taken:
            self.dirty = True
        return taken


class SessionCodec:
    """Signs and reads session cookies, and fingerprints password hashes, with one key."""

    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")
        self._serializer = URLSafeSerializer(key, salt="pytrs.web.session")

    def dumps(self, session: Session) -> str:
        payload = {
            "u": session.user_id, "i": session.sid, "t": session.login_time, "s": session.seen,
            "c": session.csrf, "p": session.fingerprint, "f": session.flashes,
        }  # fmt: skip
        return str(self._serializer.dumps(payload))

    def loads(self, cookie: str) -> Session:
        """The session in `cookie`; a fresh one for a missing, forged or malformed cookie."""
        try:
            data = self._serializer.loads(cookie)
            return Session(
                user_id=_optional_int(data["u"]), sid=str(data["i"]), login_time=float(data["t"]),
                seen=float(data["s"]), csrf=str(data["c"]), fingerprint=str(data["p"]),
                flashes=[(str(k), str(t)) for k, t in data["f"]][-MAX_FLASHES:],
            )  # fmt: skip
        except (BadSignature, KeyError, TypeError, ValueError):
            return Session()

    def fingerprint(self, password_hash: str) -> str:
        """A short keyed digest of the stored hash: changes whenever the password does."""
        digest = hmac.new(self._key, password_hash.encode("utf-8"), hashlib.sha256)
        return digest.hexdigest()[:16]


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def cookie_header(value: str, *, secure: bool) -> str:
    """The Set-Cookie value: a browser-session cookie, script-proof, not sent cross-site
    except on top-level navigation (SameSite=Lax), Secure whenever the client uses https."""
    attributes = f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax"
    return attributes + ("; Secure" if secure else "")
