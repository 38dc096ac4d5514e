"""Parsing Authentication-Results fields (RFC 8601), including the RFC's own examples."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytrs.authentication.authres import AuthResults, ResInfo, parse_authentication_results


def results(value: str) -> list[tuple[str, str, dict[str, str]]]:
    field = parse_authentication_results(value)
    assert field is not None
    return [(r.method, r.result, dict(r.properties)) for r in field.results]


def test_a_typical_field() -> None:
    field = parse_authentication_results(
        "mx.example.com;\r\n\tdkim=pass (2048-bit key; unprotected) header.d=example.com "
        "header.i=@example.com header.s=s1 header.b=AbCdEf12;\r\n\tspf=pass "
        "(mx.example.com: domain of jdoe@example.com designates 192.0.2.1 as permitted sender) "
        "smtp.mailfrom=jdoe@example.com;\r\n\tdmarc=pass (p=REJECT sp=REJECT dis=NONE) "
        "header.from=example.com"
    )
    assert field == AuthResults(
        "mx.example.com",
        (
            ResInfo("dkim", "pass", "", (
                ("header.d", "example.com"), ("header.i", "@example.com"),
                ("header.s", "s1"), ("header.b", "AbCdEf12"),
            )),
            ResInfo("spf", "pass", "", (("smtp.mailfrom", "jdoe@example.com"),)),
            ResInfo("dmarc", "pass", "", (("header.from", "example.com"),)),
        ),
    )  # fmt: skip
    assert field.results[0].get("header.d") == "example.com"
    assert field.results[0].get("header.from") == ""


@pytest.mark.parametrize(
    ("value", "authserv_id", "version", "expected"),
    [
        # RFC 8601 Appendix B examples.
        ("example.org 1; none", "example.org", 1, []),
        ("example.com; spf=pass smtp.mailfrom=example.net", "example.com", 1,
         [("spf", "pass", {"smtp.mailfrom": "example.net"})]),
        ("example.com; auth=pass (cram-md5) smtp.auth=sender@example.net; "
         "spf=pass smtp.mailfrom=example.net", "example.com", 1,
         [("auth", "pass", {"smtp.auth": "sender@example.net"}),
          ("spf", "pass", {"smtp.mailfrom": "example.net"})]),
        ("example.com; sender-id=fail header.from=example.com; "
         "dkim=pass (good signature) header.d=example.com", "example.com", 1,
         [("sender-id", "fail", {"header.from": "example.com"}),
          ("dkim", "pass", {"header.d": "example.com"})]),
        # A version, a method version, quoting, comments everywhere, odd case.
        ('"mx.example.com" 1 (v1); DKIM/1 (m) = Pass (c;o;m) header.d="Example.com"',
         "mx.example.com", 1, [("dkim", "pass", {"header.d": "Example.com"})]),
        ("(comment first) MX.Example.com; dkim=pass header(a (nested) one).d=example.com",
         "mx.example.com", 1, [("dkim", "pass", {"header.d": "example.com"})]),
        ('mx; dkim=pass reason="good (really; yes)" header.i="john smith"@example.com',
         "mx", 1, [("dkim", "pass", {"header.i": "john smith@example.com"})]),
        ("mx 2; dkim=pass header . d = example.com", "mx", 2,
         [("dkim", "pass", {"header.d": "example.com"})]),
        # A broken resinfo is left out; the others stay.
        ("mx; dkim; =pass; dkim=pass header.d=example.com; spf=", "mx", 1,
         [("dkim", "pass", {"header.d": "example.com"})]),
        ('mx; dkim=pass header.d="unterminated', "mx", 1,
         [("dkim", "pass", {"header.d": "unterminated"})]),
    ],
)  # fmt: skip
def test_grammar(
    value: str, authserv_id: str, version: int, expected: list[tuple[str, str, dict[str, str]]]
) -> None:
    field = parse_authentication_results(value)
    assert field is not None
    assert (field.authserv_id, field.version) == (authserv_id, version)
    assert results(value) == expected


def test_reason_is_kept() -> None:
    field = parse_authentication_results('mx; dkim=fail reason="bad signature" header.d=x.org')
    assert field is not None and field.results[0].reason == "bad signature"


@pytest.mark.parametrize("value", ["", "   ", ";", "; dkim=pass", "(just a comment)", '""; x=y'])
def test_no_authserv_id_no_field(value: str) -> None:
    assert parse_authentication_results(value) is None


def test_a_version_of_non_ascii_digits_is_no_version() -> None:
    # "¹" passes str.isdigit() but not int(): found by the property test below.
    found = parse_authentication_results("mx.example.com \u00b9; dkim=pass header.d=example.com")
    assert found is not None and found.version == 1


@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(value: str) -> None:
    field = parse_authentication_results(value)
    assert field is None or field.authserv_id


_PIECES = st.sampled_from(
    ["mx.example.com", ";", " ", "=", "/", ".", "(", ")", '"', "\\", "dkim", "pass", "header",
     "d", "example.com", "@", "reason", "\r\n\t", "1", "none"]
)  # fmt: skip


@given(st.lists(_PIECES, max_size=60).map("".join))
def test_near_miss_fields_never_raise(value: str) -> None:
    field = parse_authentication_results(value)
    if field is not None:
        assert all(r.method and r.result for r in field.results)
