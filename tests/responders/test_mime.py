"""The direct MIME writer round-trips through the standard parser: what a mail client reads is
what the composer meant, for any text, subject and display name."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default

from hypothesis import given, settings
from hypothesis import strategies as st

from pytrs.responders.mime import render

_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85"
    ),
    max_size=300,
)
_NAME = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
                           blacklist_characters='"\\<>,;:@()[]'),
    max_size=40,
).map(str.strip)  # fmt: skip


def _parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=default)  # type: ignore[return-value]


@settings(max_examples=150, deadline=None)
@given(subject=_TEXT.map(lambda s: " ".join(s.split())), name=_NAME, body=_TEXT)
def test_round_trip(subject: str, name: str, body: str) -> None:
    raw = render(
        [("From", f'"{name}" <support@example.com>' if name else "support@example.com"),
         ("To", "Alice <alice@customer.example>, bob@customer.example"),
         ("Subject", subject), ("Message-ID", "<1.pytrs@example.com>")],
        body,
    )  # fmt: skip
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    msg = _parse(raw)
    assert str(msg["Subject"] or "") == subject
    [sender] = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (name, "support@example.com")
    assert [a.addr_spec for a in msg["To"].addresses] == [
        "alice@customer.example", "bob@customer.example"
    ]  # fmt: skip
    expected = body if body.endswith("\n") else body + "\n"
    assert msg.get_content().replace("\r\n", "\n") == expected.replace("\r\n", "\n").replace(
        "\r", "\n"
    )


def test_html_alternative_and_long_headers() -> None:
    refs = " ".join(f"<{n}.id@example.com>" for n in range(30))
    raw = render([("Subject", "x" * 10 + " y" * 60), ("References", refs)], "plain ü", "<p>ü</p>")
    assert all(len(line) <= 78 for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n"))
    msg = _parse(raw)
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.iter_parts()
    assert plain.get_content().replace("\r\n", "\n") == "plain ü\n"
    assert html.get_content().replace("\r\n", "\n") == "<p>ü</p>\n"
    assert str(msg["References"]).split() == refs.split()
