"""Slowing down password guessing: failed logins per account and per client address.

Place in the flow: the login page asks `wait` before it verifies a password and records each
failure. An in-process sliding window: the first `free` failures within `window` seconds cost
nothing; each one beyond makes the next attempt wait twice as long as the last, up to `cap`
seconds. The cap is what keeps an attacker from locking an agent out: at worst the agent waits
`cap` seconds between tries. An attempt counts as failed from the moment it starts (so that a
burst of parallel guesses cannot all pass before the first verify ends); a successful login
takes its own count back and clears its account's failures. Each daemon counts its own
(several web daemons each slow an attacker down on their own).
"""

from __future__ import annotations

from collections import OrderedDict, deque


class Throttle:
    """Failure times per key (an account or an address), within a sliding window."""

    def __init__(
        self, *, free: int, window: float = 900.0, cap: float = 30.0, max_keys: int = 10_000
    ) -> None:
        self.free = free
        self.window = window
        self.cap = cap
        # Bounded, so that failures under endless made-up logins cannot fill memory: the keys
        # failed longest ago are forgotten first.
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        """Seconds before `key` may try again (0: now)."""
        times = self._recent(key, now)
        beyond = len(times) - self.free
        if beyond <= 0:
            return 0.0
        delay = min(self.cap, 2.0 ** (beyond - 1))
        return max(0.0, times[-1] + delay - now)

    def failed(self, key: str, now: float) -> None:
        times = self._recent(key, now)
        times.append(now)
        self._failures[key] = times
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    def forgive(self, key: str, when: float) -> None:
        """Take back one failure recorded at `when` (an attempt that succeeded after all)."""
        times = self._failures.get(key)
        if times is not None and when in times:
            times.remove(when)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        # Only as many as can still matter: the delay stops growing at the cap.
        while len(times) > self.free + 16:
            times.popleft()
        return times


class LoginThrottle:
    """The two throttles of the login page: per account (a few tries) and per client
    address (more, since many agents may share one office address)."""

    def __init__(self, *, cap: float = 30.0) -> None:
        self.accounts = Throttle(free=5, cap=cap)
        self.addresses = Throttle(free=20, cap=cap)

    def wait(self, login: str, address: str, now: float) -> float:
        return max(self.accounts.wait(_account(login), now), self.addresses.wait(address, now))

    def attempt(self, login: str, address: str, now: float) -> None:
        """Count an attempt as a failure until `succeeded` says otherwise."""
        self.accounts.failed(_account(login), now)
        self.addresses.failed(address, now)

    def succeeded(self, login: str, address: str, attempted: float) -> None:
        self.accounts.clear(_account(login))
        self.addresses.forgive(address, attempted)


def _account(login: str) -> str:
    return login.strip().casefold()
