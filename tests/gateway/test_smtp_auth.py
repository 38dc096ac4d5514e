"""The pieces of SMTP AUTH without a network: the users file, the throttle, the verify that
must not hold up the event loop."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from argon2 import PasswordHasher, Type

from pytrs.gateway.smtp_auth import AuthThrottle, SmtpUsers, UsersFileError, _verify, parse_users
from pytrs.users.passwords import hash_password

HASH = hash_password("a long password")


def test_users_file_lines_comments_and_blanks() -> None:
    text = f"# clients of the SMTP listener\n\n  crm:{HASH}  \nbilling.bot@example.com:{HASH}\n"
    assert parse_users(text) == {"crm": HASH, "billing.bot@example.com": HASH}


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (f"crm {HASH}", "line 2: expected name:hash"),
        (f"c rm:{HASH}", "line 2: a name is 1 to 48 letters, digits or . _ @ + -"),
        (f":{HASH}", "line 2: a name is 1 to 48 letters, digits or . _ @ + -"),
        (f"{'x' * 49}:{HASH}", "line 2: a name is 1 to 48 letters, digits or . _ @ + -"),
        (f"crm:{HASH}", "line 2: crm is listed twice"),
        ("other:secret", "line 2: not an argon2id hash; make one with `pytrs smtp hash-password`"),
        (
            f"other:{PasswordHasher(type=Type.I).hash('a long password')}",
            "line 2: not an argon2id hash; make one with `pytrs smtp hash-password`",
        ),
        (
            "other:$argon2id$v=19$garbage",
            "line 2: not an argon2id hash; make one with `pytrs smtp hash-password`",
        ),
    ],
    # Without the hashes, which are salted anew in each process: parallel workers (xdist)
    # must collect the same test ids.
    ids=lambda value: re.sub(r"\$argon2\S*", "<hash>", value),
)
def test_a_bad_line_is_named_without_its_hash(line: str, error: str) -> None:
    with pytest.raises(UsersFileError) as failed:
        parse_users(f"crm:{HASH}\n{line}\n")
    assert str(failed.value) == error
    assert "$argon2" not in str(failed.value) and "secret" not in str(failed.value)


def test_throttle_doubles_after_the_free_failures_and_forgets() -> None:
    throttle = AuthThrottle(free=3, base=1.0, cap=30.0, window=900.0)
    delays = [throttle.failed("192.0.2.1", float(t)) for t in range(8)]
    assert delays == [1.0, 1.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert throttle.failed("192.0.2.2", 8.0) == 1.0  # another address has its own count
    assert throttle.failed("192.0.2.1", 8.0 + 900.0) == 1.0  # the window has passed
    for t in range(5):
        throttle.failed("192.0.2.3", float(t))
    throttle.succeeded("192.0.2.3")
    assert throttle.failed("192.0.2.3", 5.0) == 1.0


async def test_verify_runs_off_the_event_loop() -> None:
    users = SmtpUsers({"crm": HASH}, AuthThrottle(base=0.001))
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    _verify(HASH, b"a long password")
    one_verify = time.perf_counter() - started
    gaps: list[float] = []

    async def ticker() -> None:
        last = loop.time()
        while True:
            await asyncio.sleep(0.001)
            gaps.append(loop.time() - last)
            last = loop.time()

    task = asyncio.create_task(ticker())
    try:
        results = await asyncio.gather(
            users.verify("crm", b"a long password", "192.0.2.1"),
            users.verify("crm", b"wrong password", "192.0.2.1"),
            users.verify("nobody", b"a long password", "192.0.2.1"),
        )
    finally:
        task.cancel()
    assert results == [True, False, False]
    # The loop kept turning while the verifies ran: no pause as long as one verify.
    assert max(gaps) < one_verify / 2, (max(gaps), one_verify)
