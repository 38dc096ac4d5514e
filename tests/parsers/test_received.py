"""A mail's path (`parsers/received.py`): the Received chain in hops, bounded, never raising."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytrs.parsers.received import MAX_HOPS, MAX_RECEIVED_CHARS, mail_path

ZNUNY = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "znuny"


def test_znunys_postfix_to_cyrus_sample() -> None:
    sample = ZNUNY / "PostMaster" / "PostMaster-Test10.box"
    if not ZNUNY.is_dir():
        pytest.skip("../shared/corpus/znuny is not here")
    first, second = mail_path(sample.read_bytes())
    assert (first.number, first.by, first.id) == (1, "mail.otrs.org (Postfix)", "DD8A632C83C")
    assert (second.with_, second.date_utc) == ("LMTPA", "2007-07-06T10:17:38+00:00")
    assert (first.delay_seconds, second.delay_seconds) == (None, 0.0)


def test_hostile_chains_are_bounded() -> None:
    many = b"".join(
        b"Received: from a%d by b with SMTP id %d; Tue, 3 Mar 2026 10:00:00 +0000\r\n" % (i, i)
        for i in range(500)
    )
    assert len(mail_path(many + b"\r\nbody")) == MAX_HOPS
    long_line = b"Received: from " + b"(x " * 50_000 + b"\r\n\r\nbody"
    [hop] = mail_path(long_line)
    assert len(hop.raw or hop.from_) <= MAX_RECEIVED_CHARS


@pytest.mark.parametrize(
    "raw", [b"", b"\xff\xfe\x00", b"Subject: none\r\n\r\nReceived: in the body\r\n"]
)
def test_no_chain_no_path(raw: bytes) -> None:
    assert mail_path(raw) == ()
