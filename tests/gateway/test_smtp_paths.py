"""The MAIL FROM / RCPT TO fast path (`gateway/smtp_paths.py`) answers exactly as aiosmtpd's
own address reading does: the same address and parameters, the same refusals."""

from __future__ import annotations

import asyncio
import email.policy
from collections.abc import AsyncIterator, Iterator
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from pytrs.gateway.addresses import AddressBook
from pytrs.gateway.smtp import IngressHandler, TrackedLMTP, TrackedSMTP, start_server
from pytrs.gateway.smtp_paths import plain_path

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "znuny"

TRICKY = [
    "<bench@client.example.net>",
    "<support@helpdesk.example.com> SIZE=1234 BODY=8BITMIME",
    "<a@b> SMTPUTF8",
    "<a@b>  SIZE=1",
    "<a@b>\tSIZE=1",
    "<a@b> \x0bSIZE=1",
    "<a@b>\u2003SIZE=1",
    "<a@b> \u2003SIZE=1",
    "<a@b> (comment) SIZE=1",
    "<a@b>(comment)",
    "<a@b> ",
    "<a@b>  ",
    "<a@b>x",
    "<a@b>>",
    "<a@b",
    "a@b.c",
    " <a@b>",
    "<>",
    "<> SIZE=1",
    "<A.B-C+tag@Example.COM>",
    "<a..b@c>",
    "<.a@c>",
    "<a.@c>",
    "<a@b..c>",
    "<a@b.>",
    "<a@.b>",
    "<a@-b>",
    "<a@b_c>",
    "<a@>",
    "<@b>",
    "<a@b@c>",
    '<"a b"@c>',
    "<a\\b@c>",
    "<a(c)@b>",
    "<a@b(c)>",
    "< a@b >",
    "<@x.y:a@b>",
    "<a@[1.2.3.4]>",
    "<é@b>",
    "<a@é.fr>",
    "<=?utf-8?q?a?=@b>",
    "<a@=?utf-8?q?b?=>",
    "<a=?b@c>",
    "<" + "x" * 64 + "@b>",
    "<" + "x" * 65 + "@b>",
    "<a@b>\x00",
    "<a\x00@b>",
]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # A session is built outside a server here; without a loop it would make one of its own.
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _both(loop: asyncio.AbstractEventLoop, arg: str, local_part_limit: int = 0) -> tuple[Any, Any]:
    session = TrackedSMTP(object(), loop=loop)
    session.local_part_limit = local_part_limit
    return _outcome(session._getaddr, arg), _outcome(lambda a: SMTP._getaddr(session, a), arg)


def _outcome(read: Any, arg: str) -> Any:
    # aiosmtpd's parser itself fails on some text ("<" alone): the same failure is the same.
    try:
        return read(arg)
    except Exception as exc:
        return type(exc), str(exc)


@pytest.mark.parametrize("limit", [0, 64])
@pytest.mark.parametrize("arg", TRICKY)
def test_the_same_address_and_parameters_as_aiosmtpd(
    loop: asyncio.AbstractEventLoop, arg: str, limit: int
) -> None:
    fast, slow = _both(loop, arg, limit)
    assert fast == slow


def test_the_plain_forms_take_the_fast_path() -> None:
    assert plain_path("<bench@client.example.net>") == ("bench@client.example.net", "")
    assert plain_path("<a@b> SIZE=12 BODY=8BITMIME") == ("a@b", "SIZE=12 BODY=8BITMIME")
    assert plain_path("<a@b>   SIZE=12") == ("a@b", "SIZE=12")
    for odd in ("<>", "<a@b> (c)", "<a@b>x", '<"a b"@c>', "<é@b>", " <a@b>", "<a@b..c>"):
        assert plain_path(odd) is None, odd


_ALPHABET = st.sampled_from(
    [*"ab.@<> \t\"\\()[]:;,=?-+_'!#é", "\x0b", "\u2003", "\x00", "\r", "\n", "SIZE=1"]
)


_TEXT = st.lists(_ALPHABET, max_size=14).map("".join)
_PART = st.lists(st.sampled_from([*'ab.-_+=?é("', "xy"]), max_size=6).map("".join)
# Mostly near the plain form, so that both sides of the fast path's edges are reached.
_NEAR_PLAIN = st.builds(
    lambda lead, local, domain, close, tail: f"{lead}{local}@{domain}{close}{tail}",
    st.sampled_from(["<", " <", ""]), _PART, _PART, st.sampled_from([">", ""]), _TEXT,
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.one_of(_TEXT, _NEAR_PLAIN), st.sampled_from([0, 3]))
def test_any_command_text_is_read_as_aiosmtpd_reads_it(
    loop: asyncio.AbstractEventLoop, arg: str, limit: int
) -> None:
    fast, slow = _both(loop, arg, limit)
    assert fast == slow


def _corpus_addresses() -> Iterator[str]:
    for path in sorted(CORPUS.rglob("*")):
        if not path.is_file() or path.suffix == ".md":
            continue
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
        fields = [str(v) for name in ("from", "to", "cc", "reply-to", "return-path")
                  for v in message.get_all(name, [])]  # fmt: skip
        for _, address in getaddresses(fields):
            if address:
                yield address


def test_the_znuny_corpus_addresses_read_the_same(loop: asyncio.AbstractEventLoop) -> None:
    addresses = sorted(set(_corpus_addresses()))
    assert len(addresses) > 20
    fast_ones = 0
    for address in addresses:
        for arg in (f"<{address}>", f"<{address}> SIZE=1234 BODY=8BITMIME", address):
            fast, slow = _both(loop, arg, 64)
            assert fast == slow, arg
            fast_ones += plain_path(arg) is not None
    assert fast_ones >= len(addresses)  # the bracketed forms of ordinary addresses


# --- whole conversations: our session against aiosmtpd's with the same settings ------------

COMMANDS = [
    "MAIL FROM:<a@b.example> SIZE=100",
    "MAIL FROM:<a@b.example> SIZE=999999999",
    "MAIL FROM:<a@b.example> SIZE=abc",
    "MAIL FROM:<a@b.example> BODY=8BITMIME SMTPUTF8",
    "MAIL FROM:<a@b.example> BODY=BINARY",
    "MAIL FROM:<a@b.example> SMTPUTF8=yes",
    "MAIL FROM:<a@b.example> FOO=1",
    "MAIL FROM:<a@b.example> =1",
    "MAIL FROM:<a@b..example>",
    "MAIL FROM:<>",
    "MAIL FROM: <a@b.example>",
    "MAIL FROM:a@b.example",
    "MAIL FROM:",
]


class _Recording:
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        return f"250 rcpt {address} {options}"


async def _conversation(port: int, lines: list[str]) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = [await reader.readline()]
    try:
        for line in lines:
            writer.write(line.encode() + b"\r\n")
            reply = await reader.readline()
            while reply[3:4] == b"-":
                reply = await reader.readline()
            replies.append(reply)
    finally:
        writer.close()
    return replies


@pytest.fixture
async def servers() -> AsyncIterator[tuple[int, int]]:
    settings = {"hostname": "mx.example", "data_size_limit": 10000, "enable_SMTPUTF8": True}
    handler = IngressHandler(AddressBook({"c@d.example": "Support"}), None, source="smtp")  # type: ignore[arg-type]
    ours = await start_server(handler, ("127.0.0.1", 0), hostname="mx.example",
                              max_message_size=10000)  # fmt: skip
    loop = asyncio.get_running_loop()
    theirs = await loop.create_server(
        lambda: SMTP(_Recording(), decode_data=False, ident="pytrs ESMTP", **settings),  # type: ignore[arg-type]
        "127.0.0.1", 0,
    )  # fmt: skip
    yield ours.sockets[0].getsockname()[1], theirs.sockets[0].getsockname()[1]
    for server in (ours, theirs):
        server.close()


@pytest.mark.parametrize("command", COMMANDS)
async def test_mail_from_is_answered_as_aiosmtpd_answers(
    servers: tuple[int, int], command: str
) -> None:
    ours, theirs = servers
    for hello in ("EHLO client.example", "HELO client.example"):
        lines = [hello, command]
        mine, reference = await _conversation(ours, lines), await _conversation(theirs, lines)
        assert mine[2:] == reference[2:], (hello, command)


@pytest.mark.parametrize(
    ("rcpt", "code"),
    [("<c@d.example>", b"250"), ("<C@D.example>", b"250"), ("<c@d.example> FOO", b"555"),
     ("<c@d..example>", b"553"), ("<c(x)@d.example>", b"250"), ("<x@y.example>", b"550")],
)  # fmt: skip
async def test_rcpt_to_is_read_as_aiosmtpd_reads_it(
    servers: tuple[int, int], rcpt: str, code: bytes
) -> None:
    ours, theirs = servers
    lines = ["EHLO client.example", "MAIL FROM:<a@b.example>", f"RCPT TO:{rcpt}"]
    mine, reference = await _conversation(ours, lines), await _conversation(theirs, lines)
    assert mine[3][:3] == code
    if code != b"550":  # the reference server accepts any recipient
        assert reference[3][:3] == code


def test_lmtp_sessions_use_the_fast_path_too(loop: asyncio.AbstractEventLoop) -> None:
    session = TrackedLMTP(object(), loop=loop)
    assert session._getaddr("<a@b> SIZE=1") == ("a@b", "SIZE=1")
